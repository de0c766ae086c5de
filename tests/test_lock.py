"""pyproject.toml and the two lock files agree, and this environment was installed from them.

pyproject.toml keeps the ranges the project supports; requirements.lock (running) and
requirements-dev.lock (running and testing) pin every dependency, direct and transitive, with
exact versions and hashes. `make lock` writes both; a dependency added to one side and not the
other fails here with what to do.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

import pytest
from packaging.markers import Marker
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parent.parent
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
PROJECT_NAME = PROJECT["project"]["name"]
FIX = "run `make lock` and commit pyproject.toml with both lock files"

_PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;\\]+)\s*(?:;\s*(.*?))?\s*\\?$")
_HASH = re.compile(r"^\s+--hash=sha256:[0-9a-f]{64}")


@dataclass
class Pin:
    name: str
    version: str
    marker: str | None
    line: int
    hashes: int = 0
    via: list[str] = field(default_factory=list)


def read_lock(path: Path) -> list[Pin]:
    """The pins of a lock written by `uv pip compile --generate-hashes`, with the hashes and
    the `# via` notes (what asked for each: a package, pyproject.toml or an input file)."""
    pins: list[Pin] = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip() or line.startswith("#"):
            continue
        pin = _PIN.match(line)
        if pin:
            pins.append(Pin(canonicalize_name(pin[1]), pin[2], pin[3], number))
        elif _HASH.match(line) and pins:
            pins[-1].hashes += 1
        elif line.strip().startswith("#") and pins:
            note = line.strip().lstrip("#").strip()
            note = note.removeprefix("via").strip()
            pins[-1].via += [part.strip() for part in note.split(",") if part.strip()]
        else:
            pytest.fail(f"{path.name}, line {number}: not a pin, a hash or a note: {line!r}")
    return pins


def requirements(extras: tuple[str, ...] = ()) -> list[Requirement]:
    """What pyproject.toml asks for: the dependencies, the extras named, the build backend."""
    wanted = list(PROJECT["project"]["dependencies"])
    for extra in extras:
        wanted += PROJECT["project"]["optional-dependencies"][extra]
    wanted += PROJECT["build-system"]["requires"]
    return [Requirement(r) for r in wanted]


def disagreements(lock: Path, extras: tuple[str, ...]) -> list[str]:
    pins = read_lock(lock)
    by_name: dict[str, list[Pin]] = {}
    for pin in pins:
        by_name.setdefault(pin.name, []).append(pin)
    problems: list[str] = []
    wanted = {canonicalize_name(r.name): r for r in requirements(extras)}
    for name, req in wanted.items():
        if name not in by_name:
            problems.append(f"pyproject.toml asks for {req} and {lock.name} has no {name}")
            continue
        for pin in by_name[name]:
            if not req.specifier.contains(pin.version, prereleases=True):
                problems.append(f"{lock.name}, line {pin.line}: {name}=={pin.version} is outside "
                                f"pyproject.toml's {req}")
    for pin in pins:
        if pin.hashes == 0:
            problems.append(f"{lock.name}, line {pin.line}: {pin.name} has no hash")
        parents = [v for v in pin.via if not v.startswith(("-c ", "-r "))]
        direct = f"{PROJECT_NAME} (pyproject.toml)" in parents
        if direct and pin.name not in wanted:
            problems.append(f"{lock.name}, line {pin.line}: {pin.name} is locked as a dependency "
                            "of pyproject.toml, which no longer asks for it")
        built = any(v.startswith("-r ") for v in pin.via)
        needed_by = [v for v in parents if canonicalize_name(v.split(" ")[0]) in by_name]
        if not (direct or built or needed_by):
            problems.append(f"{lock.name}, line {pin.line}: nothing asks for {pin.name} "
                            f"(via {', '.join(pin.via) or 'nothing'})")
    return problems


@pytest.mark.parametrize(("lock", "extras"), [("requirements.lock", ()),
                                              ("requirements-dev.lock", ("dev",))])
def test_pyproject_and_the_lock_agree(lock, extras):
    problems = disagreements(ROOT / lock, extras)
    assert not problems, (f"pyproject.toml and {lock} disagree ({FIX}):\n  "
                          + "\n  ".join(problems))


def test_running_and_testing_pin_the_same_versions():
    dev = {(p.name, p.marker): p.version for p in read_lock(ROOT / "requirements-dev.lock")}
    differ = [f"{p.name}: {p.version} in requirements.lock, {dev.get((p.name, p.marker))} in "
              "requirements-dev.lock" for p in read_lock(ROOT / "requirements.lock")
              if dev.get((p.name, p.marker)) != p.version]
    assert not differ, f"the two locks pin different versions ({FIX}):\n  " + "\n  ".join(differ)


def test_this_environment_was_installed_from_the_lock():
    """The suite runs on the versions the lock names (as `make test` installs them), so a
    green run says which versions were tested."""
    differ = []
    for pin in read_lock(ROOT / "requirements-dev.lock"):
        if pin.marker and not Marker(pin.marker).evaluate():
            continue
        try:
            installed = metadata.version(pin.name)
        except metadata.PackageNotFoundError:
            differ.append(f"{pin.name}=={pin.version} is not installed")
            continue
        if Version(installed) != Version(pin.version):
            differ.append(f"{pin.name} {installed} is installed, the lock says {pin.version}")
    assert not differ, ("this environment was not installed from requirements-dev.lock "
                        "(`make test` installs from it; `make clean test` starts afresh):\n  "
                        + "\n  ".join(differ))


# -- the check itself, on locks that disagree --------------------------------------------------

def _lock(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "requirements.lock"
    path.write_text(text, encoding="utf-8")
    return path


HASH = "    --hash=sha256:" + "0" * 64


def _entry(name: str, version: str, via: str) -> str:
    return f"{name}=={version} \\\n{HASH}\n    # via {via}\n"


def _whole_lock() -> str:
    """A lock that agrees with pyproject.toml: every requirement at its lowest allowed version."""
    text = ""
    for req in requirements():
        low = next((s.version for s in req.specifier if s.operator in (">=", "==")), "1.0")
        text += _entry(canonicalize_name(req.name), low, f"{PROJECT_NAME} (pyproject.toml)")
    return text


def test_the_check_passes_a_lock_that_agrees(tmp_path):
    assert disagreements(_lock(tmp_path, _whole_lock()), ()) == []


def test_a_dependency_missing_from_the_lock_is_named(tmp_path):
    text = re.sub(r"babel==[^\n]*\n[^\n]*\n[^\n]*\n", "", _whole_lock())
    problems = disagreements(_lock(tmp_path, text), ())
    assert problems == ["pyproject.toml asks for Babel>=2.14 and requirements.lock has no babel"]


def test_a_dependency_only_in_the_lock_is_named(tmp_path):
    text = _whole_lock() + _entry("leftpad", "1.0", f"{PROJECT_NAME} (pyproject.toml)")
    problems = disagreements(_lock(tmp_path, text), ())
    assert len(problems) == 1 and problems[0].endswith(
        "leftpad is locked as a dependency of pyproject.toml, which no longer asks for it")


def test_a_pin_outside_the_range_or_without_a_hash_or_a_reason_is_named(tmp_path):
    text = re.sub(r"babel==[0-9.]+", "babel==2.1", _whole_lock())
    text += "orphan==1.0 \\\n    # via nobody\n"
    problems = disagreements(_lock(tmp_path, text), ())
    assert any("babel==2.1 is outside pyproject.toml's Babel>=2.14" in p for p in problems)
    assert any(p.endswith("orphan has no hash") for p in problems)
    assert any(p.endswith("nothing asks for orphan (via nobody)") for p in problems)
