"""benchmarks/sweep_tiger.py: each variant changes one thing against the base and is scored on
validation only; the history-length variant trains on longer windows."""

from __future__ import annotations

import numpy as np

from tests.helpers import benchmark_script
from tests.synthetic import write_p5
from utils.data.load import load_dataset
from utils.data.semantic import write_semantic_ids
from utils.runtime.io import read_json


def test_history_50_reads_longer_histories_than_the_base(tmp_path):
    folder = write_p5(tmp_path / "beauty", n_users=30, n_items=60)
    data = folder / "sequential_data.txt"
    lines = data.read_text().splitlines()
    lines[0] = " ".join(map(str, range(1, 42)))  # user 1 buys 40 distinct items
    data.write_text("\n".join(lines) + "\n")
    ds = load_dataset(folder)
    codes = np.array([[i % 4, (i // 4) % 3, i // 12, 0] for i in range(ds.n_items)])
    header = {"data_checksum": ds.checksum, "codebook_sizes": [4, 3, 5], "collision_size": 1}
    write_semantic_ids(folder / "semantic_ids.json", header, ds.item_ids, codes)
    out = tmp_path / "sweep.json"
    benchmark_script("sweep_tiger").main(
        ["--data-dir", str(folder), "--out", str(out), "--epochs", "1", "--quiet"]
        + ["--variants", "base", "history_50"]
    )
    got = read_json(out)["variants"]
    base, longer = got["base"], got["history_50"]
    assert base["model_config"]["max_items"] == 20 and longer["model_config"]["max_items"] == 50
    assert base["longest_history_read"] == 20 < longer["longest_history_read"] <= 50
    for v in (base, longer):
        assert v["n_val_users"] == ds.n_users and set(v["val_all_users"]) >= {"recall@10"}
