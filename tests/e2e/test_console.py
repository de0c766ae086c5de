"""What an operator's console shows: one line for the schema's migration, not Alembic's chatter;
and the one-time codes a school writes beside the repository never end up in git."""

from __future__ import annotations

import re
import shutil
import subprocess

import pytest

from core.storage.migrate import head
from tests.support.process import diary, env_for
from tests.support.school import EXAMPLE_ROSTER, ROOT


def test_the_first_command_says_the_migration_in_one_line(tmp_path):
    env = env_for(tmp_path, None)
    result = diary(env, tmp_path, "roster", "import", str(EXAMPLE_ROSTER))
    assert result.returncode == 0, result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1
    assert re.search(rf"INFO core\.storage\.migrate: database schema upgraded to revision"
                     rf" {head()} \(\d+ revisions applied\)$", lines[0]), lines[0]
    assert "alembic" not in result.stderr
    # A current schema says nothing.
    again = diary(env, tmp_path, "roster", "import", str(EXAMPLE_ROSTER))
    assert again.returncode == 0 and again.stderr == ""


@pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")
def test_codes_written_as_the_readme_says_are_ignored_by_git():
    if not (ROOT / ".git").exists():
        pytest.skip("not a git checkout")
    ignored = subprocess.run(["git", "check-ignore", "-q", "codes-7b.csv"], cwd=ROOT)
    assert ignored.returncode == 0
