"""docs/CONTRACT.md and .env.example hold every setting and every journal event type."""

from __future__ import annotations

import re
from pathlib import Path

from bot.config import Settings
from core.importers.journal import BUILDERS
from core.importers.roster import COLUMNS

ROOT = Path(__file__).resolve().parent.parent
CONTRACT = (ROOT / "docs" / "CONTRACT.md").read_text(encoding="utf-8")
ENV_EXAMPLE = (ROOT / ".env.example").read_text(encoding="utf-8")


def _section(title: str) -> str:
    start = CONTRACT.index(f"## {title}")
    end = CONTRACT.find("\n## ", start + 1)
    return CONTRACT[start:] if end < 0 else CONTRACT[start:end]


def _table_names(section: str) -> set[str]:
    """The first cell of each table row, the names in backquotes."""
    names: set[str] = set()
    for line in section.splitlines():
        if line.startswith("| `"):
            names.update(re.findall(r"`([^`]+)`", line.split("|")[1]))
    return names


SETTINGS = sorted(name.upper() for name in Settings.model_fields)


def test_every_setting_is_in_the_contract():
    documented = _table_names(_section("Settings"))
    missing = [name for name in SETTINGS if name not in documented]
    assert not missing, f"settings missing from docs/CONTRACT.md: {missing}"


def test_the_contract_names_no_setting_the_code_lacks():
    documented = _table_names(_section("Settings"))
    assert sorted(documented) == SETTINGS


def test_every_setting_is_in_the_example_env_file():
    assigned = set(re.findall(r"^([A-Z_]+)=", ENV_EXAMPLE, flags=re.MULTILINE))
    missing = [name for name in SETTINGS if name not in assigned]
    assert not missing, f"settings missing from .env.example: {missing}"
    unknown = assigned - set(SETTINGS)
    assert not unknown, f"unknown settings in .env.example: {unknown}"


def test_every_journal_event_type_is_in_the_contract():
    documented = _table_names(_section("Journal events"))
    missing = [kind for kind in BUILDERS if kind not in documented]
    assert not missing, f"journal event types missing from docs/CONTRACT.md: {missing}"
    assert documented == set(BUILDERS)


def test_every_roster_column_is_in_the_contract():
    documented = _table_names(_section("Roster CSV"))
    missing = [column for column in COLUMNS if column not in documented]
    assert not missing, f"roster columns missing from docs/CONTRACT.md: {missing}"


def test_nothing_points_outside_the_repository():
    for path in (ROOT / "README.md", ROOT / "docs" / "CONTRACT.md"):
        assert "../shared" not in path.read_text(encoding="utf-8"), path
