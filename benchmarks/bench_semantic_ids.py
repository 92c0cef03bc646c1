"""Benchmark semantic-ID generation: embedding throughput, cached runs, and k-means choices.

Quantizer target (issue 3): on the real Beauty catalogue (12,101 items,
384-d), at most 1/10 of the wall time of the original study's configuration
(scikit-learn ``KMeans(n_clusters=256, n_init=10)`` per level on raw
residuals), with a final quantization error within 1% of it. Every variant
is fitted on all items and measured in the same run, through the same
residual arithmetic (src.semantic_ids.rqkmeans.fit_residual_kmeans).

  python benchmarks/bench_semantic_ids.py --data-dir beauty
  # quick look, no target check
  python benchmarks/bench_semantic_ids.py --data-dir beauty --skip-reference
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from src.semantic_ids import generator as gen  # noqa: E402
from src.semantic_ids.config import GeneratorConfig  # noqa: E402
from src.semantic_ids.embeddings import embed_texts, load_sentence_encoder  # noqa: E402
from src.semantic_ids.rqkmeans import DEFAULT_NITER, KMeansFn, fit_residual_kmeans, kmeans  # noqa: E402
from utils.data.load import load_dataset  # noqa: E402
from utils.reporting.results import RUN_RECORD  # noqa: E402
from utils.reporting.runinfo import RunRecord  # noqa: E402
from utils.runtime.cli import add_common_args, resolve_out, setup  # noqa: E402
from utils.runtime.errors import run_script  # noqa: E402
from utils.runtime.io import atomic_write_json  # noqa: E402

log = logging.getLogger("bench_semantic_ids")

TIME_TARGET = 0.10  # at most this share of the reference's wall time
ERROR_TARGET = 0.01  # final quantization error at most this much above the reference's


def sklearn_kmeans(n_init: int) -> KMeansFn:
    def fit(x: np.ndarray, k: int, seed: int) -> np.ndarray:
        from sklearn.cluster import KMeans

        return KMeans(n_clusters=k, n_init=n_init, random_state=seed).fit(x).cluster_centers_

    return fit


def faiss_builtin_kmeanspp(niter: int) -> KMeansFn:
    """faiss alone, with its own (plain, not greedy) k-means++ seeding."""

    def fit(x: np.ndarray, k: int, seed: int) -> np.ndarray:
        import faiss

        km = faiss.Kmeans(
            x.shape[1],
            k,
            niter=niter,
            seed=seed,
            init_method=faiss.ClusteringInitMethod_KMEANS_PLUS_PLUS,
            max_points_per_centroid=-(-len(x) // k),
            min_points_per_centroid=1,
        )
        km.train(np.ascontiguousarray(x, dtype=np.float32))
        return km.centroids.copy()

    return fit


def measure(name: str, fn: KMeansFn, x: np.ndarray, levels: int, k: int, seed: int) -> dict:
    t0 = time.perf_counter()
    q, codes = fit_residual_kmeans(x, levels, k, seed, kmeans=fn)
    seconds = time.perf_counter() - t0
    _, errors = q.encode_with_errors(x)
    log.info(
        "%-40s %7.1fs  final error %.5f  per level %s",
        name,
        seconds,
        errors[-1],
        [round(e, 5) for e in errors],
    )
    return {
        "name": name,
        "seconds": round(seconds, 3),
        "final_error": errors[-1],
        "per_level_error": errors,
        "codes": codes,
    }


def throughput(texts: list[str], model: str, device: str, batch_size: int) -> dict:
    """Items/s of the encoder on `texts`, bypassing the cache."""
    _, report = embed_texts(
        texts, None, lambda: load_sentence_encoder(model, device, True, batch_size), batch_size
    )
    return report.to_dict()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add_common_args(p, default_out="results/bench_semantic_ids_{dataset}.json")
    p.add_argument("--levels", type=int, default=3)
    p.add_argument("--codebook-size", type=int, default=256)
    p.add_argument(
        "--reference-n-init",
        type=int,
        default=10,
        help="n_init of the reference scikit-learn KMeans",
    )
    p.add_argument(
        "--skip-reference",
        action="store_true",
        help="leave out the slow reference (no target check)",
    )
    p.add_argument(
        "--throughput-items",
        type=int,
        default=1000,
        help="items encoded without cache to measure items/s (0: skip)",
    )
    p.add_argument("--cache-dir", default=str(gen.DEFAULT_CACHE_DIR))
    args = p.parse_args(argv)
    device = setup(args)
    record = RunRecord("benchmarks/bench_semantic_ids.py", vars(args), args.seed)
    cfg = GeneratorConfig(seed=args.seed)
    with record.stage("load data"):
        ds = load_dataset(args.data_dir)
    record.data_checksum = ds.checksum
    texts = gen.item_texts(ds, cfg).texts

    report: dict = {"dataset": ds.name, "items": ds.n_items, "device": device}
    if args.throughput_items:
        with record.stage("uncached encoding"):
            report["embedding_uncached"] = throughput(
                texts[: args.throughput_items], cfg.model, device, cfg.batch_size
            )
    with record.stage("embeddings (fill cache)"):
        x, fill = gen.embed(texts, cfg, args.cache_dir, device)
    t0 = time.perf_counter()
    x_cached, cached = gen.embed(texts, cfg, args.cache_dir, device)
    report["embedding_cached_run"] = {
        **cached.to_dict(),
        "seconds": round(time.perf_counter() - t0, 3),
    }
    if fill.n_encoded:
        report["embedding_full_catalogue"] = fill.to_dict()
    assert np.array_equal(x, x_cached)

    fn = kmeans
    variants: list[tuple[str, Callable]] = [
        (f"chosen: greedy k-means++ (sklearn) + float64 Lloyd, <= {DEFAULT_NITER} iterations", fn),
        (
            "greedy k-means++ (sklearn) + float64 Lloyd, 25 iterations",
            lambda a, k, s: kmeans(a, k, s, niter=25),
        ),
        ("faiss alone: plain k-means++, 25 iterations", faiss_builtin_kmeanspp(25)),
        ("sklearn KMeans n_init=1", sklearn_kmeans(1)),
    ]
    if not args.skip_reference:
        n_init = args.reference_n_init
        variants.append((f"reference: sklearn KMeans n_init={n_init}", sklearn_kmeans(n_init)))
    results = []
    with record.stage("quantizers"):
        for name, f in variants:
            results.append(measure(name, f, x, args.levels, args.codebook_size, args.seed))
        again = measure(
            "chosen, same seed again", fn, x, args.levels, args.codebook_size, args.seed
        )
    chosen = results[0]
    report["deterministic_same_seed"] = bool(np.array_equal(chosen["codes"], again["codes"]))
    with threadpool_limits(1, user_api="blas"):
        one = measure("chosen, BLAS on 1 thread", fn, x, args.levels, args.codebook_size, args.seed)
    report["same_codes_1_blas_thread"] = bool(np.array_equal(chosen["codes"], one["codes"]))
    if not args.skip_reference:
        ref = results[-1]
        for r in results:
            r["time_vs_reference"] = r["seconds"] / ref["seconds"]
            r["error_vs_reference"] = r["final_error"] / ref["final_error"] - 1.0
            r["meets_target"] = (
                r["time_vs_reference"] <= TIME_TARGET and r["error_vs_reference"] <= ERROR_TARGET
            )
        report["target"] = (
            f"time <= {TIME_TARGET:.0%} of the reference, "
            f"final error <= reference + {ERROR_TARGET:.0%}"
        )
        report["chosen_meets_target"] = chosen["meets_target"]
    report["quantizers"] = [{k: v for k, v in r.items() if k != "codes"} for r in results]
    report[RUN_RECORD] = record.to_dict()
    out = resolve_out(args.out, ds.name)
    atomic_write_json(out, report)
    log.info("wrote %s", out)
    return 0


if __name__ == "__main__":
    run_script(main)
