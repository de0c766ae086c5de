"""The type gate of `make lint` catches a push payload's misspelt key (core/pushes.py types each
kind's payload), where nothing else would fail before a push is rendered."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

TYPO = '''
from core.pushes import GradePush


def render(p: GradePush) -> str:
    return p["subjcet"]


def produce() -> GradePush:
    return {"child": "Иван", "subject": "Алгебра", "weight": 1, "date": "2026-11-23",
            "value": 5, "comitted": True}
'''


def test_a_misspelt_payload_key_fails_the_type_gate(tmp_path):
    source = tmp_path / "typo.py"
    source.write_text(TYPO, encoding="utf-8")
    config = tmp_path / "mypy.ini"
    config.write_text("[mypy]\nfollow_imports = silent\n", encoding="utf-8")
    result = subprocess.run(
        [sys.executable, "-m", "mypy", "--no-incremental", "--config-file", str(config),
         str(source)], cwd=ROOT, capture_output=True, text=True, timeout=300,
        env={"MYPYPATH": str(ROOT), "PATH": "/usr/bin:/bin"})
    assert result.returncode == 1, result.stdout + result.stderr
    assert '"GradePush" has no key "subjcet"' in result.stdout
    assert '"comitted"' in result.stdout
