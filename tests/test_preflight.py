"""utils/runtime/preflight.py: a script started outside the virtual environment says so in one
line instead of a traceback."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.helpers import REPO
from utils.runtime.preflight import REQUIRED, missing


def test_missing_names_only_what_cannot_be_imported():
    assert missing(REQUIRED) == []
    assert missing(("numpy", "no_such_package_xyz")) == ["no_such_package_xyz"]


@pytest.mark.parametrize("script", ["recommend.py", "tiger_train_eval.py", "prepare_data.py"])
def test_a_script_without_its_packages_fails_in_one_line(script):
    """The script run by a Python that sees no site-packages (as a system Python outside the venv
    would): one error line naming the missing packages and the commands, exit 1, no traceback."""
    hide = (
        "import runpy, sys; sys.path[:] = [p for p in sys.path if 'site-packages' not in p]; "
        f"sys.argv = [{script!r}, '--help']; runpy.run_path({script!r}, run_name='__main__')"
    )
    run = subprocess.run(
        [sys.executable, "-c", hide], cwd=REPO, capture_output=True, text=True, timeout=60
    )
    assert run.returncode == 1 and "Traceback" not in run.stderr
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: numpy")
    assert "source .venv/bin/activate" in lines[0] and f".venv/bin/python {script}" in lines[0]
