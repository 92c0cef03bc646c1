"""Run a few commands as named stages, in lanes side by side (one per core), and tell a person
what happens: a line when a stage starts and ends, with the time since the start, and a bar of
stages done that keeps the clock moving when stderr is a terminal. Each stage's own output goes
to its log file; a failed stage stops every lane and shows the end of its log."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm

from utils.runtime.errors import DataError

POLL_SECONDS = 0.2
LOG_TAIL_LINES = 15


@dataclass(frozen=True)
class Stage:
    """One command: what a person reads, the argv, and the file its stdout and stderr go to."""

    name: str
    argv: list[str]
    log: Path


def clock(seconds: float) -> str:
    """Elapsed time as m:ss."""
    return f"{int(seconds) // 60}:{int(seconds) % 60:02d}"


@dataclass
class _Lane:
    stages: list[Stage]
    running: subprocess.Popen | None = None
    started: float = 0.0

    def start_next(self, say: Callable[[str], None], t0: float) -> None:
        stage = self.stages[0]
        stage.log.parent.mkdir(parents=True, exist_ok=True)
        with stage.log.open("w") as log:  # the child holds its own handle from here on
            self.running = subprocess.Popen(stage.argv, stdout=log, stderr=subprocess.STDOUT)
        self.started = time.monotonic()
        say(f"[{clock(self.started - t0)}] start {stage.name}")


def _tail(path: Path) -> str:
    lines = path.read_text(errors="replace").splitlines()[-LOG_TAIL_LINES:]
    return "\n".join(f"    {line}" for line in lines)


def _stop_all(lanes: list[_Lane]) -> None:
    for lane in lanes:
        if lane.running is not None and lane.running.poll() is None:
            lane.running.terminate()
            lane.running.wait()


def run_lanes(lanes: list[list[Stage]], t0: float | None = None) -> None:
    """Run each lane's stages one after another and the lanes at once; raise DataError naming
    the failed stage, its exit code and log (with the log's last lines) on the first failure."""
    t0 = time.monotonic() if t0 is None else t0
    active = [_Lane(list(stages)) for stages in lanes if stages]
    total = sum(len(lane.stages) for lane in active)
    bar = tqdm(total=total, desc="stages", unit="stage", disable=not sys.stderr.isatty())
    say = tqdm.write if not bar.disable else print
    try:
        for lane in active:
            lane.start_next(say, t0)
        while any(lane.running is not None for lane in active):
            time.sleep(POLL_SECONDS)
            bar.refresh()  # the elapsed time moves even while no stage ends
            for lane in active:
                _poll(lane, say, t0, bar)
    except BaseException:
        _stop_all(active)
        raise
    finally:
        bar.close()


def _poll(lane: _Lane, say: Callable[[str], None], t0: float, bar: tqdm) -> None:
    """Finish the lane's stage if its process ended, and start the lane's next one."""
    if lane.running is None or lane.running.poll() is None:
        return
    stage, code = lane.stages.pop(0), lane.running.returncode
    lane.running = None
    now = time.monotonic()
    if code != 0:
        raise DataError(
            f"{stage.name} failed (exit {code}); its output is in {stage.log}:\n{_tail(stage.log)}"
        )
    bar.update(1)
    say(f"[{clock(now - t0)}] done  {stage.name} in {now - lane.started:.0f} s")
    if lane.stages:
        lane.start_next(say, t0)
