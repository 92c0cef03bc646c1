"""A five-minute tour of the whole pipeline on MovieLens-100K (what `make demo` runs).

It prepares the data (data/ml-100k/), builds semantic IDs from the movies' titles and genres,
then trains, in two lanes side by side (one per core): item-level TIGER for 1 epoch; and SASRec
(5 epochs), the two counting baselines, the ID analysis, MF and DeepFM. It ends with who won
each task, in words. Everything but the prepared data goes into --run-dir (default runs/demo/);
each stage's output is in its log there. Short schedules: this shows the pipeline working, not
the study's numbers (README, docs/RESULTS.md).

  python demo.py
  python demo.py --run-dir runs/demo2 --lanes 1     # one stage at a time
"""

from __future__ import annotations

import utils.runtime.preflight  # noqa: F401  (first: a missing package is one line)

# isort: split

import argparse
import os
import sys
import time
from pathlib import Path

from utils.reporting.story import winners
from utils.runtime.cli import HelpFormatter
from utils.runtime.errors import add_debug_flag, run_script
from utils.runtime.stages import Stage, clock, run_lanes

DATA = "data/ml-100k"
SEED = 0


def python() -> str:
    """This interpreter as a person would type it: relative when it lives in the checkout."""
    exe = Path(sys.executable)
    return os.path.relpath(exe) if exe.is_relative_to(Path.cwd()) else str(exe)


def stages(run: Path) -> tuple[list[Stage], list[list[Stage]]]:
    """The demo's stages: the two everything needs, then the two lanes."""
    ids = run / f"ml-100k_ids_seed{SEED}"  # the data set's own IDs of this seed: tables say so
    common = ["--data-dir", DATA, "--semantic-dir", str(ids), "--seed", str(SEED), "--quiet"]

    def stage(name: str, script: str, flags: str, out: str | None = None) -> Stage:
        """``script`` with the common flags, ``flags`` and, for ``out``, its run folder and
        results file in the demo's folder; its log is logs/<script>-<out>.log."""
        argv = [sys.executable, script, *common, *flags.split()]
        if out is not None:
            argv += ["--run-dir", str(run / out), "--out", str(run / f"{out}.json")]
        log = run / "logs" / f"{Path(script).stem}{f'-{out}' if out else ''}.log"
        return Stage(name, argv, log)

    prepare = Stage(
        "data: MovieLens-100K",
        [sys.executable, "prepare_data.py", "--dataset", "ml-100k", "--quiet"],
        run / "logs" / "prepare_data.log",
    )
    first = [prepare, stage("semantic IDs of the movies", "semantic_id_generator.py", "")]
    next_item = "--protocol paper --models"
    tiger = [
        stage(
            "TIGER (item-level), 1 epoch",
            "tiger_train_eval.py",
            f"{next_item} tiger_item --epochs 1",
            "sequential_tiger",
        ),
    ]
    rest = [
        stage("SASRec (5 epochs), most popular, transitions", "tiger_train_eval.py",
              f"{next_item} sasrec most_popular transition --epochs 5", "sequential_ids"),
        stage("semantic-ID analysis", "analyze_semantic_ids.py", "", "analysis"),
        stage("MF: item IDs vs semantic IDs", "mf_train_eval.py", "", "mf"),
        stage("DeepFM: item IDs vs semantic IDs", "neural_train_eval.py",
              "--models deepfm --modes baseline semantic hybrid", "ctr"),
    ]  # fmt: skip
    return first, [tiger, rest]


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=HelpFormatter)
    p.add_argument(
        "--run-dir", default="runs/demo", help="where everything goes (default %(default)s)"
    )
    p.add_argument(
        "--lanes",
        type=int,
        choices=(1, 2),
        default=2,
        help="stages at once: 2 uses both cores of a 2-core machine (default %(default)s)",
    )
    add_debug_flag(p)
    args = p.parse_args(argv)
    run, t0 = Path(args.run_dir), time.monotonic()
    first, lanes = stages(run)
    run_lanes([first], t0)
    run_lanes(lanes if args.lanes == 2 else [[s for lane in lanes for s in lane]], t0)
    print(f"\nDone in {clock(time.monotonic() - t0)} (m:ss); everything is in {run}/.\n")
    outs = [Path(s.argv[s.argv.index("--out") + 1]) for lane in lanes for s in lane]
    print(winners(run, only=outs))
    print(
        "\nShort schedules (TIGER 1 epoch, SASRec 5): the pipeline at work, not the study's "
        "numbers (README).\n"
        f"All tables: {python()} summarize_results.py --results-dir {run}\n"
        f"Plots:      {run}/*/*.png"
    )
    checkpoint = next((run / "sequential_tiger" / "checkpoints").glob("*.pt"))
    print(
        "Ask the TIGER model for a user's next items (from any shell, no activation needed):\n"
        f"  {python()} recommend.py --checkpoint {checkpoint} --user 196"
    )


if __name__ == "__main__":
    run_script(main)
