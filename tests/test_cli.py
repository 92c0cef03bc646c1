"""The flags every top-level script shares: defaults shown in --help, deprecated aliases."""

from __future__ import annotations

import argparse
import importlib
import logging
import subprocess
import sys

import pytest

from tests.helpers import CHILD_ENV, REPO

SCRIPTS = [
    "prepare_data",
    "semantic_id_generator",
    "analyze_semantic_ids",
    "mf_train_eval",
    "neural_train_eval",
    "tiger_train_eval",
    "summarize_results",
]


class Parsed(Exception):
    """Raised instead of parsing, carrying the parser a script built."""


def script_parser(name: str, monkeypatch: pytest.MonkeyPatch) -> argparse.ArgumentParser:
    """The parser ``name``'s main() builds, caught at parse_args()."""

    def catch(self: argparse.ArgumentParser, *args: object, **kwargs: object) -> None:
        raise Parsed(self)

    monkeypatch.setattr(argparse.ArgumentParser, "parse_args", catch)
    with pytest.raises(Parsed) as caught:
        importlib.import_module(name).main([])
    return caught.value.args[0]


def shown_default(action: argparse.Action) -> str | None:
    """The text --help must show for an option's default (None: nothing to show)."""
    default = action.default
    if any(default is hidden for hidden in (None, False, argparse.SUPPRESS)):
        return None
    if isinstance(default, list):
        return str(default[0])
    return str(default)


@pytest.mark.parametrize("name", SCRIPTS)
def test_every_option_with_a_default_shows_it_in_help(name, monkeypatch):
    """Each option's help paragraph names its default value (the formatter adds it where the
    text does not)."""
    parser = script_parser(name, monkeypatch)
    formatter = parser._get_formatter()
    missing = []
    for action in parser._actions:
        want = shown_default(action)
        if want is None or not action.option_strings or action.help == argparse.SUPPRESS:
            continue
        text = formatter._expand_help(action) if action.help is not None else ""
        if want not in text:
            missing.append(f"{action.option_strings[0]} (default {want!r}): {text!r}")
    assert missing == []


def test_help_runs_for_every_script():
    """`python <script>.py --help` exits 0 and prints the defaults (one child process each)."""
    for name in SCRIPTS:
        done = subprocess.run(
            [sys.executable, f"{name}.py", "--help"],
            cwd=REPO,
            capture_output=True,
            text=True,
            env={**CHILD_ENV, "PATH": ""},
            check=False,
        )
        assert done.returncode == 0, (name, done.stderr[-500:])
        assert "(default:" in done.stdout, name


@pytest.mark.parametrize(
    ("name", "old"),
    [("analyze_semantic_ids", "--ids-dir"), ("semantic_id_generator", "--output-dir")],
)
def test_a_deprecated_folder_flag_still_works_with_a_warning(name, old, monkeypatch, caplog):
    """The old names of --semantic-dir set it, log one warning naming the new flag, and are
    hidden from --help."""
    parser = script_parser(name, monkeypatch)
    monkeypatch.undo()
    with caplog.at_level(logging.WARNING):
        args = parser.parse_args(["--data-dir", "d", old, "ids"])
    assert args.semantic_dir == "ids"
    assert [r.getMessage() for r in caplog.records] == [f"{old} is deprecated; use --semantic-dir"]
    assert old not in parser.format_help()
