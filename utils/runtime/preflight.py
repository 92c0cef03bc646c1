"""The first import of every script: a package missing from the running Python is one line that
says which command to run, not a traceback from deep inside an import.

The usual cause is a command typed outside the project's virtual environment (`make` installs
into .venv/), so the message names both ways in. It only looks packages up (no import), so it
costs milliseconds.
"""

from __future__ import annotations

import importlib.util
import sys

# import names of what requirements.txt installs and the scripts import at start-up
REQUIRED = (
    "numpy",
    "pandas",
    "scipy",
    "sklearn",
    "threadpoolctl",
    "torch",
    "tqdm",
    "matplotlib",
    "psutil",
)


def missing(names: tuple[str, ...] = REQUIRED) -> list[str]:
    """The names among ``names`` that this Python cannot import."""
    return [name for name in names if importlib.util.find_spec(name) is None]


def check(names: tuple[str, ...] = REQUIRED) -> None:
    """Exit with one line naming the missing packages and the fix, if any is missing."""
    absent = missing(names)
    if absent:
        script = sys.argv[0].rsplit("/", 1)[-1] or "the script"
        sys.stderr.write(
            f"error: {', '.join(absent)} not installed for {sys.executable}: run the toolkit in "
            f"its virtual environment: `make setup` once, then `source .venv/bin/activate` (or "
            f"`.venv/bin/python {script} ...`)\n"
        )
        sys.exit(1)


check()
