"""A run's headline metrics beside the study's (``summarize_results.py --compare RUN_DIR``), and
a results folder's beside its committed version (``--compare-committed``).

A run is only compared with reference files of the same kind, data set and (sequential runs)
protocol, model by model: an ML-100K run is never set beside Beauty's numbers. A results folder
rewritten on another machine is compared file by file with the same file as git has it.
"""

from __future__ import annotations

import io
import subprocess
import tarfile
from pathlib import Path
from typing import Any

from utils.reporting.catalog import Found
from utils.reporting.results import dig
from utils.reporting.tables import markdown_table
from utils.runtime.errors import DataError

POINTWISE = ("rmse", "mae", "auc", "logloss", "pr_auc")
RANKING = ("recall@10", "ndcg@10", "recall@20", "ndcg@20")
SEQUENTIAL = ("recall@10", "ndcg@10", "mrr@20")


def _means(block: Any, metrics: tuple[str, ...]) -> dict[str, float]:
    """``{metric: mean}`` of a mean ± std block (``{metric: {mean, std, values}}``)."""
    out = {}
    for m in metrics:
        mean = dig(block, m, "mean")
        if isinstance(mean, (int, float)):
            out[m] = float(mean)
    return out


def headline(f: Found) -> dict[str, dict[str, float]]:
    """``{model: {metric: value}}``: the numbers a results file leads with (means over seeds)."""
    r = f.result
    if f.kind == "mf":
        return {
            name: {
                **_means(dig(m, "mean_std", "test", "overall"), POINTWISE),
                **_means(dig(m, "mean_std", "test", "ranking", "overall"), RANKING),
            }
            for name, m in r["models"].items()
        }
    if f.kind == "neural":
        return {
            f"{name} ({mode})": _means(dig(m, "mean_std", "test", "overall"), POINTWISE)
            for mode, block in r["modes"].items()
            for name, m in block["models"].items()
        }
    if f.kind in ("tiger", "sequential"):
        return {
            name: {k: float(m["test"][k]) for k in SEQUENTIAL if k in m["test"]}
            for name, m in r["models"].items()
        }
    return {}


def same_task(a: Found, b: Found) -> bool:
    """Comparable: the same kind of run on the same data set (and protocol, for sequential)."""
    return a.kind == b.kind and a.dataset == b.dataset and a.protocol == b.protocol


def compare_runs(run: list[Found], reference: list[Found], same_file: bool = False) -> str:
    """Markdown: for each results file of the run, its models' headline metrics beside the first
    reference file of the same task that has the model (``same_file``: the reference file of the
    same name, and only the numbers that differ), and the difference."""
    if not run:
        return "no results file in the run folder"
    sections = []
    for f in run:
        refs = [
            r for r in reference if (r.path.name == f.path.name if same_file else same_task(f, r))
        ]
        rows = []
        for model, metrics in headline(f).items():
            ref = next((r for r in refs if model in headline(r)), None)
            theirs = headline(ref)[model] if ref else {}
            for metric, value in metrics.items():
                before = theirs.get(metric)
                if same_file and before is not None and round(before, 4) == round(value, 4):
                    continue  # equal as shown: float noise below the tables' precision
                delta = None if before is None else f"{value - before:+.4f}"
                source = ref.path.name if ref else "no reference"
                rows.append([model, metric, before, value, delta, source])
        if same_file and not rows:
            continue
        protocol = f", {f.protocol} protocol" if f.protocol else ""
        title = f"**{f.path}** ({f.kind}, {f.dataset}{protocol})"
        header = ["model", "metric", "reference", "this run", "Δ", "reference file"]
        sections.append(title + "\n\n" + markdown_table(header, rows))
    if same_file and not sections:
        return "every headline number equals the committed one"
    return "\n\n".join(sections)


def committed_results(results_dir: Path, into: Path, rev: str = "HEAD") -> Path:
    """Write the ``.json`` files of ``results_dir`` as commit ``rev`` has them into ``into``, and
    return that folder; DataError outside a git checkout or for a folder git does not track."""
    folder = results_dir.resolve()
    try:
        top = subprocess.run(
            ["git", "rev-parse", "--show-toplevel"],
            cwd=folder,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        relative = folder.relative_to(Path(top).resolve()).as_posix()
        archive = subprocess.run(
            ["git", "archive", "--format=tar", rev, "--", relative],
            cwd=top,
            capture_output=True,
            check=True,
        ).stdout
    except (OSError, ValueError, subprocess.CalledProcessError) as e:
        said = getattr(e, "stderr", None)
        detail = said.decode(errors="replace").strip() if isinstance(said, bytes) else said
        raise DataError(
            f"{results_dir}: no committed version to compare with (not in a git checkout, or "
            f"not tracked at {rev}): {(detail or str(e)).splitlines()[0]}"
        ) from None
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        members = [m for m in tar.getmembers() if m.isfile() and m.name.endswith(".json")]
        for m in members:
            target = into / Path(m.name).name  # flat: results files sit directly in the folder
            target.write_bytes(tar.extractfile(m).read())
    return into
