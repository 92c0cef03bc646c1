"""argparse ``type=`` checks shared by every script, so a bad flag fails at parse time with a
message.

One rule: every numeric flag has a floor and a ceiling, and the message says both. Without a
floor ``--epochs 0`` trains nothing and still writes results; without a ceiling ``--dim 1e9``
or ``--negatives 1000000`` try to allocate hundreds of GiB, and ``--shuffles 1000000000`` runs
for days, after the split or the embeddings were already computed. The ceilings are what the
machine this toolkit targets (2 cores, 24 GiB) can hold with the other flags at their defaults;
a test checks that every script's numeric flags use them.
"""

from __future__ import annotations

import argparse
import codecs
import math
import re
from collections.abc import Callable

DEVICE_PATTERN = re.compile(r"auto|cpu|mps|cuda(:\d+)?")

MEMORY = "larger does not fit in a 24 GiB machine's memory"
TIME = "more would run for days on 2 cores"


def _number(kind: type, text: str) -> float | int:
    """``text`` as ``kind``; an integer may be written as a float ("1e9"), so its range is what
    gets checked."""
    try:
        value: float | None = float(text)
    except ValueError:
        value = None
    if kind is int:
        try:
            return int(text)
        except ValueError:
            if value is not None and math.isfinite(value) and value.is_integer():
                return int(value)
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}")
    if value is None or not math.isfinite(value):
        expected = "a number" if value is None else "a finite number"
        raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}")
    return value


def _show(limit: float) -> str:
    return str(limit) if isinstance(limit, int) else f"{limit:g}"


def bounded(
    kind: type,
    low: float,
    high: float,
    low_open: bool = False,
    high_open: bool = False,
    why: str = "",
) -> Callable[[str], float]:
    """A ``type=`` check for a number of ``kind`` between ``low`` and ``high`` (each end included
    unless open); the message names the range and, for a ceiling, ``why``."""
    span = f"{'(' if low_open else '['}{_show(low)}, {_show(high)}{')' if high_open else ']'}"
    what = f"{'an integer' if kind is int else 'a number'} in {span}"

    def check(text: str) -> float:
        value = _number(kind, text)
        if value < low or (low_open and value == low):
            raise argparse.ArgumentTypeError(f"must be {what}, got {text}")
        if value > high or (high_open and value == high):
            reason = f" ({why})" if why else ""
            raise argparse.ArgumentTypeError(f"must be {what}{reason}, got {text}")
        return value

    check.__name__ = what  # argparse names the type in its messages
    check.low, check.high = low, high  # type: ignore[attr-defined]
    return check


# numpy and torch take seeds in [0, 2^32).
seed = bounded(int, 0, 2**32 - 1, why="seeds are 32-bit")
epochs = bounded(int, 1, 1000, why=TIME)
patience = bounded(int, 1, 1000, why=TIME)
batch_size = bounded(int, 1, 2**20, why=MEMORY)
dim = bounded(int, 1, 1024, why=MEMORY)  # embedding sizes
layer_size = bounded(int, 1, 8192, why=MEMORY)  # MLP widths
buckets = bounded(int, 1, 2**22, why=MEMORY)  # hash-bucket tables
optional_buckets = bounded(int, 0, 2**22, why=MEMORY)  # 0 = off
negatives = bounded(int, 1, 256, why=MEMORY)  # sampled negatives per positive
list_length = bounded(int, 1, 1000, why=MEMORY)  # top-k lists, beams, cut-offs, examples
repeats = bounded(int, 1, 1000, why=TIME)  # shuffles, k-means iterations
threads = bounded(int, 0, 256, why="more threads than that only slow a run down")
processes = bounded(int, 0, 64, why=MEMORY)
levels = bounded(int, 1, 16, why=MEMORY)
codebook_size = bounded(int, 1, 65536, why=MEMORY)
item_count = bounded(int, 1, 10**7, why="no catalogue here is larger")
tokens = bounded(int, 0, 100_000, why=MEMORY)
seconds = bounded(int, 1, 7 * 86400, why="a week")
learning_rate = bounded(float, 0.0, 10.0, low_open=True, why="a larger step only diverges")
penalty = bounded(float, 0.0, 1000.0, why="a larger penalty zeroes every weight")
scale = bounded(float, 0.0, 10.0, why="larger initial weights overflow")
threshold = bounded(float, -1e6, 1e6, why="ratings are small numbers")
fraction = bounded(float, 0.0, 1.0, high_open=True)
# the collaborative half's weight against the text half (semantic IDs)
half_weight = bounded(
    float, 0.0, 100.0, low_open=True, high_open=True, why="the text half keeps a say"
)


layers = bounded(int, 1, 48, why=MEMORY)  # transformer blocks
heads = bounded(int, 1, 64, why=MEMORY)  # attention heads
widening = bounded(int, 1, 16, why=MEMORY)  # a feed-forward layer's width over the model's
dropout = bounded(float, 0.0, 1.0, high_open=True)
history = bounded(int, 1, 1000, why=MEMORY)  # items a sequential model reads
shared_negatives = bounded(int, 1, 65536, why=MEMORY)  # a batch's sampled-softmax negatives
steps = bounded(int, 0, 10**7, why=TIME)
users_cap = bounded(int, 0, 10**7, why="no data set here has more users")  # 0 = all
clip = bounded(float, 0.0, 1e6, low_open=True)

# The numeric fields of the models' configurations: --set and --config values
# (src/sequential/overrides.py) and a checkpoint's recorded configuration (src/serving/) get the
# ranges their flags have, so neither builds a model a flag would refuse.
FIELD_RANGES: dict[str, Callable[[str], float]] = {
    "dim": dim,
    "negatives": negatives,
    "d_model": dim,
    "head_dim": dim,
    "d_ff": layer_size,
    "ff_mult": widening,
    "n_layers": layers,
    "enc_layers": layers,
    "dec_layers": layers,
    "n_heads": heads,
    "dropout": dropout,
    "label_smoothing": dropout,
    "max_items": history,
    "user_tokens": optional_buckets,
    "n_negatives": shared_negatives,
    "epochs": epochs,
    "batch_size": batch_size,
    "eval_batch": batch_size,
    "lr": learning_rate,
    "weight_decay": penalty,
    "patience": patience,
    "grad_clip": clip,
    "warmup_steps": steps,
    "beam": list_length,
    "val_users_during_training": users_cap,
    "unconstrained_users": users_cap,
    "cold_share": fraction,
}


def device_name(text: str) -> str:
    """auto, cpu, cuda, cuda:N or mps; whether the machine has it is checked at set-up."""
    if not DEVICE_PATTERN.fullmatch(text):
        raise argparse.ArgumentTypeError(
            f"unknown device {text!r}; choose auto, cpu, cuda, cuda:N or mps"
        )
    return text


def encoding(text: str) -> str:
    """A text encoding Python knows (utf-8, latin-1, utf-16, cp1252, ...)."""
    try:
        codecs.lookup(text)
    except LookupError:
        raise argparse.ArgumentTypeError(
            f"unknown text encoding {text!r}; e.g. utf-8, latin-1, utf-16, cp1252"
        ) from None
    return text


def ids_digest(text: str) -> str:
    """A semantic-ID set's short digest (12 lowercase hex digits), or '' for no check."""
    if text and not re.fullmatch(r"[0-9a-f]{12}", text):
        raise argparse.ArgumentTypeError(
            f"expected 12 lowercase hex digits (as results files name an ID set), got {text!r}"
        )
    return text


# the checks of text flags (a pattern, no range), which the every-flag-has-a-ceiling test skips
TEXT_TYPES = (device_name, ids_digest, encoding)
