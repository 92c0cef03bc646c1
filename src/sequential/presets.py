"""What a sequential run trains: model sizes and schedules per preset (quick, paper, long),
the models each preset runs (TIGER, the tuned SASRec, the counting baselines), and the published
numbers of each protocol that the results are compared with."""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import Any

from src.sequential.baselines import BASELINES
from src.sequential.sasrec import SASRecConfig
from src.sequential.tiger import TigerConfig
from src.training import TrainConfig

MODELS = ("tiger", "tiger_item", "sasrec", *BASELINES)
# Published test numbers on this Beauty split, by the protocol that produced them.
PUBLISHED: dict[str, dict[str, dict[str, float]]] = {
    "paper": {  # Rajput et al. 2023, Table 2 (their SASRec row is the BCE, one-negative model)
        "TIGER (Rajput et al. 2023)": {
            "recall@5": 0.0454,
            "ndcg@5": 0.0321,
            "recall@10": 0.0648,
            "ndcg@10": 0.0384,
        },
        "SASRec, BCE (Rajput et al. 2023)": {
            "recall@5": 0.0387,
            "ndcg@5": 0.0249,
            "recall@10": 0.0605,
            "ndcg@10": 0.0318,
        },
    },
    "holdout": {  # eSASRec benchmark README (Petrov et al., RecSys 2025), leave-one-out Beauty
        "SASRec, sampled softmax (eSASRec benchmark)": {"recall@10": 0.0921, "ndcg@10": 0.0531},
        "eSASRec (eSASRec benchmark)": {"recall@10": 0.0928, "ndcg@10": 0.0523},
    },
}


@dataclass
class Preset:
    """Everything a preset fixes: model sizes, schedules (``train`` per model name), evaluation
    sizes."""

    tiger: TigerConfig
    sasrec: SASRecConfig
    train: dict[str, TrainConfig]
    models: tuple[str, ...] = MODELS  # what the preset runs unless --models says otherwise
    beam: int = 20
    val_users_during_training: int = 0  # 0 = all users
    unconstrained_users: int = 0  # 0 = all test users
    cold_share: float = 0.1  # share of the top 10 reserved for cold items (cold-start ranking)
    eval_batch: int = 256
    note: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "tiger": self.tiger.to_dict(),
            "sasrec": self.sasrec.to_dict(),
            "train": {k: asdict(v) for k, v in self.train.items()},
            "models": list(self.models),
            "beam": self.beam,
            "val_users_during_training": self.val_users_during_training,
            "unconstrained_users": self.unconstrained_users,
            "cold_share": self.cold_share,
            "eval_batch": self.eval_batch,
            "note": self.note,
        }

    def with_epochs(self, epochs: int) -> Preset:
        return replace(self, train={k: replace(v, epochs=epochs) for k, v in self.train.items()})


def _train(**kw: Any) -> TrainConfig:
    base = dict(
        batch_size=256,
        lr=1e-3,
        weight_decay=0.01,
        grad_clip=1.0,
        schedule="inverse_sqrt",
        monitor="ndcg@10",
        mode="max",
    )
    return TrainConfig(**{**base, **kw})


QUICK_TIGER = TigerConfig(n_heads=4, head_dim=32, d_ff=512, enc_layers=2, dec_layers=2)
# A fixed 20 epochs, lr 5e-3 with 300 warm-up steps and cosine decay to zero; the best validation
# epoch is tested (patience larger than the budget: no early stop).
CPU_TIGER = _train(epochs=20, lr=5e-3, warmup_steps=300, schedule="cosine", patience=100)
# SASRec as tuned on validation (benchmarks/sweep_sasrec.py, results/sasrec_sweep.json): the
# eSASRec benchmark's configuration (embedding 256, 1 block, 1 head, 50 items, constant lr 1e-3,
# batch 128), early stopping on validation, with a sampled softmax over 4096 negatives shared by
# the batch (the benchmark draws 256 per position: as many distinct negatives per batch cost too
# much memory on a CPU, and 256 shared ones trained a clearly worse model), and dropout 0.35
# instead of the benchmark's 0.2: the sweep's best filtered validation NDCG@10 (0.0602 against
# 0.0579 at 0.2 and 0.0590 at 0.5; embedding 64: 0.0557).
TUNED_SASREC = SASRecConfig(
    d_model=256, n_layers=1, n_heads=1, dropout=0.35, max_items=50, loss="sampled", n_negatives=4096
)
CPU_SASREC = _train(
    epochs=200,
    batch_size=128,
    lr=1e-3,
    schedule="constant",
    weight_decay=0.0,
    patience=10,
)

PRESETS: dict[str, Preset] = {
    # The main job on a 2-core CPU (TIGER with the item-level encoder and SASRec
    # in ~40 minutes): the narrower TIGER (2+2 layers, 4 heads of 32, FF 512) for
    # a fixed 20 epochs (~9,800 steps) with warm-up and cosine decay to zero (CPU_TIGER), the
    # recipe chosen on validation by benchmarks/sweep_tiger.py (results/tiger_sweep.json).
    "quick": Preset(
        tiger=QUICK_TIGER,
        sasrec=TUNED_SASREC,
        train={"tiger": CPU_TIGER, "tiger_item": CPU_TIGER, "sasrec": CPU_SASREC},
        models=("tiger_item", "sasrec", *BASELINES),
        val_users_during_training=5000,
        note="CPU main job: TIGER 2+2 layers (4x32 heads, FF 512) with the item-level encoder, a "
        "fixed budget of epochs with cosine decay (the best validation epoch is tested), and "
        "the tuned SASRec (sampled softmax, early stopping on all validation users), most-popular "
        "and item-to-item transitions; TIGER's curves on 5,000 fixed validation users, final "
        "val/test metrics on all users",
    ),
    # The paper's size (4+4 layers, d 128, 6x64 heads, FF 1024) and schedule
    # length (~200k steps of 256 = ~400 epochs of Beauty's ~124k windows), for a GPU.
    "paper": Preset(
        tiger=TigerConfig(),
        sasrec=TUNED_SASREC,
        train={
            "tiger": _train(epochs=400, warmup_steps=10_000, patience=20),
            "tiger_item": _train(epochs=400, warmup_steps=10_000, patience=20),
            "sasrec": CPU_SASREC,
        },
        models=("tiger", "tiger_item", "sasrec", *BASELINES),
        note="the paper's TIGER size and schedule length (~200k steps of 256, inverse-sqrt decay), "
        "early stopping on all validation users; meant for a GPU",
    ),
}
# The paper's token-level encoder at the quick size and recipe: ~3x the item-level
# encoder's cost per step, so about 1.5-2 hours on this CPU.
PRESETS["long"] = replace(
    PRESETS["quick"],
    models=("tiger",),
    note="the paper's token-level encoder at the quick size and recipe (20 epochs, cosine "
    "decay); 1.5-2 hours on a 2-core CPU",
)
