"""A preset's hyperparameters changed from the command line or a JSON file.

``tiger_train_eval.py --set sasrec.dropout=0.2 train.sasrec.lr=2e-3`` and ``--config FILE.json``
(the same keys nested: ``{"sasrec": {"dropout": 0.2}, "train": {"sasrec": {"lr": 0.002}}}``)
reach every field of the model sizes (``tiger.*``, ``sasrec.*``), each model's schedule
(``train.<model>.*``) and the preset's evaluation sizes (``beam``, ``cold_share``, ...), so a
sweep needs no code change. Each value must have the type of the field it replaces; a misspelt
key or a value of the wrong type is refused naming the fields there are.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
from dataclasses import fields, replace
from typing import Any

from src.sequential.presets import Preset
from utils.runtime import argtypes
from utils.runtime.budget import check_product

# evaluation sizes a preset fixes beside its models
TOP_LEVEL = ("beam", "val_users_during_training", "unconstrained_users", "cold_share", "eval_batch")
# fields set by the run itself, not by hand: the IDs' codebook sizes (--semantic-dir), the
# checkpoint path, resumption and what a checkpoint records (--resume, --checkpoint-dir)
FIXED = {"codebook_sizes", "checkpoint", "resume", "identity", "spec"}


def parse_assignments(items: list[str]) -> dict[str, Any]:
    """``["tiger.d_model=64", "train.sasrec.schedule=cosine"]`` -> dotted key -> value; a value
    is read as JSON (numbers, true/false, null, lists) and otherwise kept as a string."""
    out: dict[str, Any] = {}
    for item in items:
        key, sep, text = item.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"{item!r} is not KEY=VALUE (e.g. sasrec.dropout=0.2)")
        try:
            out[key.strip()] = json.loads(text)
        except json.JSONDecodeError:
            out[key.strip()] = text
    return out


def flatten(config: Any, prefix: str = "") -> dict[str, Any]:
    """A nested JSON object -> dotted keys (``{"sasrec": {"dropout": 0.2}}`` ->
    ``{"sasrec.dropout": 0.2}``)."""
    if not isinstance(config, dict):
        raise ValueError('a config file holds one JSON object, e.g. {"sasrec": {"dropout": 0.2}}')
    out: dict[str, Any] = {}
    for key, value in config.items():
        name = f"{prefix}{key}"
        out.update(flatten(value, f"{name}.") if isinstance(value, dict) else {name: value})
    return out


def _coerce(key: str, value: Any, current: Any) -> Any:
    """``value`` checked against the type of the field's current value (ints widen to floats;
    None is allowed only where the field may be None, as grad_clip) and against the field's range
    (``argtypes.FIELD_RANGES``, the ranges of the flags)."""
    if value is None:
        if current is None or key.endswith("grad_clip"):
            return None
        raise ValueError(f"{key} cannot be null")
    kind = type(current) if current is not None else float
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if isinstance(value, kind) and not (kind is int and isinstance(value, bool)):
        return in_range(key, value)
    raise ValueError(
        f"{key}={json.dumps(value)} must be {kind.__name__} (now {json.dumps(current)})"
    )


def in_range(key: str, value: Any) -> Any:
    """``value`` if its field's range (by the key's last part) admits it, else ValueError naming
    the key, the range and why; NaN and infinities are never a setting."""
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"{key}={value} must be a finite number")
    check = argtypes.FIELD_RANGES.get(key.rsplit(".", 1)[-1])
    if check is not None and isinstance(value, (int, float)):
        try:
            check(repr(value))
        except argparse.ArgumentTypeError as exc:
            raise ValueError(f"{key} {exc}") from None
    return value


def _settable(obj: Any) -> dict[str, Any]:
    return {f.name: getattr(obj, f.name) for f in fields(obj) if f.name not in FIXED}


def _set(obj: Any, key: str, name: str, value: Any) -> Any:
    known = _settable(obj)
    if name not in known:
        raise ValueError(f"unknown key {key!r}: {type(obj).__name__} has {', '.join(known)}")
    return _replace(obj, key, **{name: _coerce(key, value, known[name])})


def _replace(obj: Any, key: str, **changes: Any) -> Any:
    """dataclasses.replace, with the class's own checks (e.g. an unknown SASRec loss) naming
    the key that failed them."""
    try:
        return replace(obj, **changes)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{key}: {exc}") from None


def apply_overrides(preset: Preset, updates: dict[str, Any]) -> Preset:
    """``preset`` with the dotted-key ``updates`` applied; ValueError names a bad key or value
    (the model configurations' own checks included, e.g. an unknown SASRec loss)."""
    for key, value in updates.items():
        parts = key.split(".")
        if len(parts) == 1 and key in TOP_LEVEL:
            preset = _replace(preset, key, **{key: _coerce(key, value, getattr(preset, key))})
        elif len(parts) == 2 and parts[0] in ("tiger", "sasrec"):
            part = getattr(preset, parts[0])
            preset = replace(preset, **{parts[0]: _set(part, key, parts[1], value)})
        elif len(parts) == 3 and parts[0] == "train" and parts[1] in preset.train:
            train = dict(preset.train)
            train[parts[1]] = _set(train[parts[1]], key, parts[2], value)
            preset = replace(preset, train=train)
        else:
            models = ", ".join(f"train.{m}.*" for m in preset.train)
            raise ValueError(
                f"unknown key {key!r}: give tiger.*, sasrec.*, {models} or one of "
                f"{', '.join(TOP_LEVEL)}"
            )
    if updates:
        check_memory(preset)
    return preset


def check_memory(preset: Preset) -> None:
    """Refuse keys each in range whose product would not fit (utils.runtime.budget): SASRec's
    activations (batch x history x width, per layer) and its sampled-softmax logits (batch x
    history x negatives)."""
    cfg, train = preset.sasrec, preset.train.get("sasrec")
    if train is None:
        return
    batch = {"train.sasrec.batch_size": train.batch_size, "sasrec.max_items": cfg.max_items}
    width = {"sasrec.d_model": cfg.d_model, "sasrec.n_layers": cfg.n_layers}
    check_product({**batch, **width}, 8, "SASRec's activations")
    if cfg.loss == "sampled":
        check_product({**batch, "sasrec.n_negatives": cfg.n_negatives}, 3, "SASRec's logits")


def overrides_tag(updates: dict[str, Any]) -> str:
    """A short digest of the overrides for checkpoint names ("" without any), so a run with
    other hyperparameters never shares a checkpoint file with the preset's own run."""
    if not updates:
        return ""
    text = json.dumps(updates, sort_keys=True)
    return "-cfg" + hashlib.sha256(text.encode()).hexdigest()[:8]
