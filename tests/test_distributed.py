"""Data-parallel training over two gloo processes equals one process with the same global batch.

The two processes are started the way torchrun starts them (RANK, WORLD_SIZE, LOCAL_RANK,
MASTER_ADDR and MASTER_PORT in the environment), so the scripts' own start-up joins the group.
"""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.multiprocessing as mp

import mf_train_eval
from src.sequential.beam_search import build_trie
from src.sequential.ranking import ColdStart, score_rank, score_top_k, tiger_rank
from src.sequential.sasrec import SASRec, SASRecConfig
from src.sequential.sequence_data import SequenceExamples
from src.training import TrainConfig, epoch_generator, fit, index_batches, rank_share
from tests.test_mf import write_clustered_movielens, write_clustered_semantic_ids
from tests.test_tiger import SIZES, tiny, toy_windows
from utils.data.load import load_dataset
from utils.runtime import distributed

WORLD = 2


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _mf_argv(folder: Path, out: Path) -> list[str]:
    return [
        "--data-dir",
        str(folder),
        "--out",
        str(out / "mf.json"),
        "--plot-dir",
        str(out / "plots"),
        "--split-cache",
        str(folder.parent / "splits"),
        "--cold-fraction",
        "0.2",
        "--models",
        "mf_id",
        "mf_semantic",
        "--epochs",
        "3",
        "--batch-size",
        "37",  # uneven slices: 37 rows are 19 + 18, the last batch is shorter
        "--quiet",
    ]


def _sasrec_run(checkpoint: Path) -> dict:
    """SASRec (no dropout) on chunks of mixed length in batches of 4, 4 and 1 (one empty slice),
    for two epochs, then resumed from the checkpoint for a third."""
    g = torch.Generator().manual_seed(0)
    seq = (torch.randint(0, 12, (9, 1), generator=g) + torch.arange(6)) % 12
    seq[:3, :2] = -1  # shorter chunks: fewer loss terms in some rows
    seq[3, :4] = -1

    def batches(epoch: int):
        for idx in index_batches(len(seq), 4, epoch_generator(0, epoch)):
            yield seq[idx]

    def train(epochs: int, resume: bool):
        torch.manual_seed(0)
        model = SASRec(12, SASRecConfig(d_model=16, n_layers=1, dropout=0.0, max_items=5))
        cfg = TrainConfig(
            epochs=epochs, lr=1e-2, patience=10, checkpoint=str(checkpoint), resume=resume
        )
        result = fit(
            model,
            batches,
            lambda m, b: m.loss(b),
            lambda m: {"auc": -float(m.loss(seq))},
            cfg,
            weight=SASRec.loss_terms,
        )
        return model, result

    train(2, resume=False)
    model, result = train(3, resume=True)
    return {
        "loss": [h["loss"] for h in result.history],
        "val": [h["val_auc"] for h in result.history],
        "weights": float(sum(p.detach().double().sum() for p in model.parameters())),
    }


def _rankings() -> dict:
    """TIGER's beam search (plain and cold-start) and SASRec's ranking of 37 examples in
    batches of 5 (8 batches shared out among the ranks)."""
    hist, length, target = toy_windows(37)
    ex = SequenceExamples(hist, length, target, torch.arange(37), torch.arange(37))
    model = tiny("item").eval()
    codes = (model.item_tokens[1:] - 2 - model.offsets).numpy()
    trie = build_trie(codes, SIZES)
    plain = tiger_rank(model, ex, trie, beam=6, batch_size=5)
    is_cold = np.arange(len(codes)) % 5 == 0
    cold = tiger_rank(model, ex, trie, 6, 5, cold=ColdStart.build(codes, SIZES, is_cold, share=0.2))
    torch.manual_seed(0)
    sasrec = SASRec(40, SASRecConfig(d_model=16, n_layers=1, max_items=6)).eval()
    top_items, top_scores = score_top_k(sasrec, ex, 5, 7)
    return {
        "tiger": [plain.ranks.tolist(), plain.items.tolist(), plain.scores.tolist()],
        "tiger_invalid": [plain.invalid_top1, plain.invalid_top10],
        "cold_share": [cold.ranks.tolist(), cold.items.tolist()],
        "sasrec": [score_rank(sasrec, ex, 5)[0].tolist(), top_items.tolist(), top_scores.tolist()],
    }


def _summary(result: dict, sasrec: dict) -> dict:
    models = result["models"]
    return {
        "mf_loss": {n: [h["loss"] for h in m["seeds"]["0"]["history"]] for n, m in models.items()},
        "mf_test": {n: m["seeds"]["0"]["test"]["overall"] for n, m in models.items()},
        "world_size": result["run_record"]["config"]["world_size"],
        "sasrec": sasrec,
        "rankings": _rankings(),
    }


def _worker(rank: int, port: int, folder: str, out: str, report: str) -> None:
    os.environ.update(
        RANK=str(rank),
        LOCAL_RANK=str(rank),
        WORLD_SIZE=str(WORLD),
        MASTER_ADDR="127.0.0.1",
        MASTER_PORT=str(port),
    )
    result = mf_train_eval.main(_mf_argv(Path(folder), Path(out)))
    sasrec = _sasrec_run(Path(report).parent / "sasrec.pt")
    Path(report.format(rank=rank)).write_text(json.dumps(_summary(result, sasrec)))
    distributed.shutdown()


def test_shards_cover_the_rows_in_rank_order():
    for n in (0, 1, 5, 37):
        bounds = [distributed.shard_bounds(n, 3, r) for r in range(3)]
        assert bounds[0][0] == 0 and bounds[-1][1] == n
        assert all(a[1] == b[0] for a, b in zip(bounds, bounds[1:]))
        assert max(hi - lo for lo, hi in bounds) - min(hi - lo for lo, hi in bounds) <= 1


def test_one_process_trains_on_the_whole_batch():
    batch = {"users": torch.arange(5), "items": (torch.arange(5) * 2, None)}
    local, share = rank_share(batch)
    assert share == 1.0 and torch.equal(local["items"][0], batch["items"][0])
    assert distributed.world_size() == 1 and distributed.is_main()


def test_a_script_leaves_the_group_after_success_and_waits_for_no_peer_after_a_failure(
    monkeypatch,
):
    from utils.runtime.errors import DataError, run_script

    calls: list[tuple] = []
    monkeypatch.setattr(distributed, "shutdown", lambda *a, **k: calls.append((a, k)))
    with pytest.raises(SystemExit) as ok:
        run_script(lambda: None)
    assert ok.value.code == 0 and calls == [((), {})]  # at the barrier with every rank
    calls.clear()

    def fail():
        raise DataError("bad file")

    with pytest.raises(SystemExit) as failed:
        run_script(fail)
    assert failed.value.code == 1 and calls == []  # atexit leaves without waiting


def test_two_gloo_processes_match_one_process(tmp_path):
    folder = write_clustered_movielens(tmp_path / "ml-tiny", n_users=40, per_user=20)
    write_clustered_semantic_ids(folder, load_dataset(folder))
    one = _summary(
        mf_train_eval.main(_mf_argv(folder, tmp_path / "one")),
        _sasrec_run(tmp_path / "one-sasrec.pt"),
    )
    report = str(tmp_path / "report{rank}.json")
    (tmp_path / "two").mkdir()
    mp.spawn(
        _worker,
        args=(_free_port(), str(folder), str(tmp_path / "two"), report),
        nprocs=WORLD,
        join=True,
    )
    two = [json.loads(Path(report.format(rank=r)).read_text()) for r in range(WORLD)]

    assert one["world_size"] == 1 and two[0]["world_size"] == WORLD
    assert two[0] == two[1]  # every rank agrees on losses, metrics and weights
    for name, losses in one["mf_loss"].items():
        assert len(losses) == 3
        np.testing.assert_allclose(two[0]["mf_loss"][name], losses, rtol=1e-5)
        for metric, value in one["mf_test"][name].items():
            assert two[0]["mf_test"][name][metric] == pytest.approx(value, rel=1e-4, abs=1e-6)
    for key in ("loss", "val"):
        np.testing.assert_allclose(two[0]["sasrec"][key], one["sasrec"][key], rtol=1e-5)
    assert two[0]["sasrec"]["weights"] == pytest.approx(one["sasrec"]["weights"], rel=1e-5)
    # Shared-out evaluation gives exactly the single-process rankings (JSON: inf == inf).
    assert json.dumps(two[0]["rankings"]) == json.dumps(one["rankings"])
    # Rank 0 alone wrote: one results file, one set of plots, one checkpoint.
    written = sorted(p.name for p in (tmp_path / "two").rglob("*") if p.is_file())
    assert written == sorted(p.name for p in (tmp_path / "one").rglob("*") if p.is_file())
    assert [p.name for p in (tmp_path / "two").glob("*.json")] == ["mf.json"]
    assert (
        json.loads((tmp_path / "two" / "mf.json").read_text())["run_record"]["config"]["world_size"]
        == WORLD
    )
