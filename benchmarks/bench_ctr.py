"""Training throughput of the CTR models: pre-built tensors sliced per batch vs a per-sample
DataLoader.

The slow path is the original study's pipeline, kept only here for the
comparison: a torch ``Dataset`` that builds one dict of tensors per example
when it is read (vocabulary lookups, title tokenising and hashing) and a
``collate_fn`` that stacks the dicts into a batch. A second slow variant reads
pre-built per-item lists instead, to show how much of the gap is featurising
and how much is per-sample collation. All paths train the very same model
(same class, same inputs - checked -, same batch size, same optimiser); only
the way a batch reaches the model differs. The fast path is timed in both bag
layouts (``offsets`` and ``padded``). Target: the fast path at >= 10x the
original pipeline's examples/s.

Example:
    python benchmarks/bench_ctr.py --data-dirs beauty data/ml-100k
"""

from __future__ import annotations

import argparse
import itertools
import logging
import sys
import time
from collections.abc import Callable, Iterable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from src.pointwise.batches import epoch_batches  # noqa: E402
from src.pointwise.ctr import MODELS, CTRConfig, build_ctr_model  # noqa: E402
from src.pointwise.ctr_experiment import ctr_objective  # noqa: E402
from src.pointwise.features import (  # noqa: E402
    BAG_LAYOUTS,
    MAX_TITLE_TOKENS,
    TITLE_BUCKETS,
    Batch,
    FeatureTensors,
    build_features,
    title_tokens,
    vocab_index,
)
from utils.data.dataset import Dataset  # noqa: E402
from utils.data.examples import PointwiseExamples, TrainSampler, resolve_objective  # noqa: E402
from utils.data.load import load_dataset  # noqa: E402
from utils.data.splits import Split, get_split  # noqa: E402
from utils.reporting.runinfo import RunRecord  # noqa: E402
from utils.runtime.cli import add_common_args, setup  # noqa: E402
from utils.runtime.errors import run_script  # noqa: E402
from utils.runtime.hashing import stable_hash  # noqa: E402
from utils.runtime.io import atomic_write_json  # noqa: E402

log = logging.getLogger("bench_ctr")


class PerSampleDataset(torch.utils.data.Dataset):
    """The slow baseline: one dict of tensors per example, made in Python when the example is read.

    ``featurise=True`` is the original study's pipeline: each read maps the
    raw IDs, brand and categories through vocabulary dicts and tokenises and
    hashes the title. ``featurise=False`` is the best a per-sample loader can
    do: it reads pre-built per-item lists. Both produce exactly the inputs of
    :meth:`FeatureTensors.gather` (checked by :func:`check_same_inputs`).
    """

    def __init__(
        self,
        ex: PointwiseExamples,
        ds: Dataset,
        split: Split,
        features: FeatureTensors,
        featurise: bool,
    ):
        unsupported = set(features.spec.sparse) - {"user", "item", "brand"}
        if unsupported:
            raise ValueError(
                "the per-sample baseline covers the baseline mode only, not fields "
                f"{sorted(unsupported)}"
            )
        self.ex, self.meta, self.featurise = ex, ds.meta, featurise
        self.fields = [name for name in features.spec.sparse if name != "user"]
        self.bag_names = features.bag_names
        self.user_index = features.user_index.tolist()
        self.dense = features.dense.tolist()
        self.item_rows = features.item_sparse.tolist()
        self.bag_rows = {name: self._bag_lists(features, name) for name in self.bag_names}
        known = np.zeros(ds.n_items, dtype=bool)
        known[ds.items[split.train]] = True
        column = {
            name: features.item_sparse[:, k].cpu().numpy() for k, name in enumerate(self.fields)
        }
        self.vocab = {
            "item": {i: int(r) for i, r in enumerate(column.get("item", [])) if r},
            "brand": {b: int(r) for b, r in zip(ds.meta.brand, column.get("brand", [])) if r},
            "categories": self._bag_vocab(ds.meta.categories, known),
            "title": self._bag_vocab(
                [
                    [stable_hash(t, TITLE_BUCKETS) for t in title_tokens(title, MAX_TITLE_TOKENS)]
                    for title in ds.meta.title
                ],
                known,
            ),
        }

    @staticmethod
    def _bag_lists(features: FeatureTensors, name: str) -> list[list[int]]:
        values = getattr(features, f"{name}_values").tolist()
        starts, lengths = (
            getattr(features, f"{name}_starts").tolist(),
            getattr(features, f"{name}_lengths").tolist(),
        )
        return [values[s : s + n] for s, n in zip(starts, lengths)]

    @staticmethod
    def _bag_vocab(lists: list[list], known: np.ndarray) -> dict:
        flat = [v for values in lists for v in values]
        index, _ = vocab_index(np.array(flat), np.repeat(known, [len(values) for values in lists]))
        return {v: int(r) for v, r in zip(flat, index) if r}

    def __len__(self) -> int:
        return len(self.ex)

    def _featurise(self, i: int) -> tuple[list[int], dict[str, list[int]]]:
        keys = {"item": i, "brand": self.meta.brand[i]}
        fields = [self.vocab[name].get(keys[name], 0) for name in self.fields]
        raw = {
            "categories": self.meta.categories[i],
            "title": [
                stable_hash(t, TITLE_BUCKETS)
                for t in title_tokens(self.meta.title[i], MAX_TITLE_TOKENS)
            ],
        }
        bags = {
            name: [r for r in (self.vocab[name].get(v, 0) for v in raw[name]) if r]
            for name in self.bag_names
        }
        return fields, bags

    def __getitem__(self, k: int) -> dict[str, torch.Tensor]:
        u, i = int(self.ex.users[k]), int(self.ex.items[k])
        if self.featurise:
            fields, bags = self._featurise(i)
        else:
            fields, bags = (
                self.item_rows[i],
                {name: rows[i] for name, rows in self.bag_rows.items()},
            )
        sample = {
            "sparse": torch.tensor([self.user_index[u], *fields]),
            "dense": torch.tensor(self.dense[i]),
            "label": torch.tensor(float(self.ex.labels[k])),
        }
        sample.update({name: torch.tensor(rows, dtype=torch.long) for name, rows in bags.items()})
        return sample


def dict_collate(samples: list[dict[str, torch.Tensor]]) -> tuple[Batch, torch.Tensor]:
    """Stack the per-example dicts into a Batch; ragged bags become flat indices + offsets."""
    bags = {}
    for name in samples[0].keys() - {"sparse", "dense", "label"}:
        lengths = torch.tensor([len(s[name]) for s in samples])
        bags[name] = (torch.cat([s[name] for s in samples]), torch.cumsum(lengths, 0) - lengths)
    batch = Batch(
        torch.stack([s["sparse"] for s in samples]),
        bags,
        torch.stack([s["dense"] for s in samples]),
    )
    return batch, torch.stack([s["label"] for s in samples])


def check_same_inputs(dataset: PerSampleDataset, features: FeatureTensors, n: int = 256) -> None:
    """The slow path must feed the model exactly what the fast path gathers, or the comparison is
    void."""
    slow, _ = dict_collate([dataset[k] for k in range(n)])
    fast = features.gather(
        torch.as_tensor(dataset.ex.users[:n]), torch.as_tensor(dataset.ex.items[:n])
    )
    same = (
        torch.equal(slow.sparse, fast.sparse.cpu())
        and torch.equal(slow.dense, fast.dense.cpu())
        and all(
            torch.equal(slow.bags[b][0], fast.bags[b][0].cpu())
            and torch.equal(slow.bags[b][1], fast.bags[b][1].cpu())
            for b in fast.bags
        )
    )
    if not same:
        raise RuntimeError("the per-sample baseline builds other inputs than FeatureTensors.gather")


def _time_steps(
    model: torch.nn.Module, batches: Callable[[int], Iterable], steps: int, warmup: int, loss_of
) -> float:
    """Examples per second over ``steps`` training steps, after ``warmup`` untimed ones (epochs
    chained as needed)."""
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    it = itertools.chain.from_iterable(batches(epoch) for epoch in itertools.count())
    n, t0 = 0, 0.0
    for step in range(warmup + steps):
        if step == warmup:
            n, t0 = 0, time.perf_counter()
        batch = next(it)
        loss, size = loss_of(model, batch)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        n += size
    return n / (time.perf_counter() - t0)


def bench_dataset(
    data_dir: str, args: argparse.Namespace, device: str, record: RunRecord
) -> list[dict]:
    ds = load_dataset(data_dir)
    objective = ctr_objective(resolve_objective(ds))
    split = get_split(ds, "temporal", args.split_seed, cache_dir=Path(data_dir) / "splits")
    sampler = TrainSampler(ds, split, objective, args.negatives, args.seed)
    cfg = CTRConfig()
    rows = []
    features = {
        layout: build_features(ds, split, "baseline", bag_layout=layout).to(device)
        for layout in BAG_LAYOUTS
    }
    examples = sampler.epoch(0)
    datasets = {
        featurise: PerSampleDataset(examples, ds, split, features["offsets"], featurise)
        for featurise in (True, False)
    }
    for dataset in datasets.values():
        check_same_inputs(dataset, features["offsets"])

    def fast_loss(model, batch):
        return F.binary_cross_entropy_with_logits(
            model(batch["users"], batch["items"]), batch["labels"]
        ), len(batch["labels"])

    def slow_loss(model, batch):
        b, labels = batch
        b = Batch(
            b.sparse.to(device),
            {k: (v[0].to(device), v[1].to(device)) for k, v in b.bags.items()},
            b.dense.to(device),
        )
        return F.binary_cross_entropy_with_logits(model.score(b), labels.to(device)), len(labels)

    for name in args.models:
        row = {
            "dataset": ds.name,
            "model": name,
            "objective": objective,
            "batch_size": args.batch_size,
        }
        for layout in BAG_LAYOUTS:
            torch.manual_seed(args.seed)
            model = build_ctr_model(name, features[layout], cfg).to(device)
            with record.stage(f"{ds.name} {name} fast {layout}"):
                batches = epoch_batches(sampler, args.batch_size, args.seed, device)
                row[f"fast_{layout}_examples_per_s"] = round(
                    _time_steps(model, batches, args.steps, 2, fast_loss)
                )
        for featurise, key in ((True, "dataloader_featurise"), (False, "dataloader_prebuilt")):
            torch.manual_seed(args.seed)
            model = build_ctr_model(name, features["offsets"], cfg).to(device)
            with record.stage(f"{ds.name} {name} {key}"):
                loader = torch.utils.data.DataLoader(
                    datasets[featurise],
                    batch_size=args.batch_size,
                    shuffle=True,
                    collate_fn=dict_collate,
                    generator=torch.Generator().manual_seed(args.seed),
                )
                row[f"{key}_examples_per_s"] = round(
                    _time_steps(
                        model, lambda epoch, loader=loader: loader, args.slow_steps, 1, slow_loss
                    )
                )
        best_fast = max(row[f"fast_{layout}_examples_per_s"] for layout in BAG_LAYOUTS)
        row["speedup_vs_featurise"] = round(
            best_fast / row["dataloader_featurise_examples_per_s"], 1
        )
        row["speedup_vs_prebuilt"] = round(best_fast / row["dataloader_prebuilt_examples_per_s"], 1)
        row["meets_10x_target"] = row["speedup_vs_featurise"] >= 10
        log.info("%s", row)
        rows.append(row)
    return rows


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add_common_args(p, default_out="results/bench_ctr.json", threads=1)
    p.add_argument("--data-dirs", nargs="+", default=["beauty", "data/ml-100k"])
    p.add_argument("--models", nargs="+", choices=list(MODELS), default=list(MODELS))
    p.add_argument("--batch-size", type=int, default=2048)
    p.add_argument(
        "--negatives", type=int, default=2, help="implicit data: sampled negatives per positive"
    )
    p.add_argument("--steps", type=int, default=50, help="timed steps of the fast path")
    p.add_argument("--slow-steps", type=int, default=10, help="timed steps of the DataLoader path")
    args = p.parse_args(argv)
    device = setup(args)
    record = RunRecord("benchmarks/bench_ctr.py", vars(args), args.seed)
    rows = [
        row for data_dir in args.data_dirs for row in bench_dataset(data_dir, args, device, record)
    ]
    out = {
        "benchmark": "CTR training throughput (examples/s), sliced tensors vs per-sample "
        "DataLoader + dict collate",
        "device": device,
        "threads": torch.get_num_threads(),
        "rows": rows,
        "run_record": record.to_dict(),
    }
    atomic_write_json(args.out, out)
    header = [
        "dataset",
        "model",
        "sliced tensors (offsets)",
        "sliced tensors (padded)",
        "DataLoader, featurise per sample",
        "DataLoader, pre-built lists",
        "speed-up vs featurise",
        "speed-up vs pre-built",
    ]
    print("| " + " | ".join(header) + " |\n|" + "---|" * len(header))
    for r in rows:
        print(
            f"| {r['dataset']} | {r['model']} | {r['fast_offsets_examples_per_s']:,} "
            f"| {r['fast_padded_examples_per_s']:,} "
            f"| {r['dataloader_featurise_examples_per_s']:,} "
            f"| {r['dataloader_prebuilt_examples_per_s']:,} "
            f"| {r['speedup_vs_featurise']}x | {r['speedup_vs_prebuilt']}x |"
        )
    return out


if __name__ == "__main__":
    run_script(main)
