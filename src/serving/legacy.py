"""Checkpoints written before checkpoints carried their model's configuration (the main job's
first TIGER and SASRec runs): the configuration is rebuilt from the preset their file name
records, and only where what the file holds pins the run down.

A name such as ``tiger-tiger_item-beauty-quick-paper-seed0-ids254bc5e6f726.pt`` names the model,
the data set, the preset, the protocol and the seed, and TIGER's the digest of its semantic IDs.
The saved training configuration must be the preset's, and the split must follow from the
protocol (leave-one-out without a cold hold-out, or the split recorded in the checkpoint). The
data itself is checked by the recorded data checksum (SASRec) or through the semantic IDs (TIGER:
the IDs file is refused unless it belongs to this data, and the digest in the name must be its);
the weights' shapes are checked against the rebuilt model when it is loaded. Anything else is
refused in one line with the command that re-creates the checkpoint.
"""

from __future__ import annotations

import re
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

from src.sequential.presets import PRESETS
from src.sequential.protocols import PROTOCOLS
from utils.runtime.errors import CheckpointError

NAME = re.compile(
    r"^tiger-(?P<name>tiger_item|tiger|sasrec)-(?P<dataset>.+)-(?P<preset>"
    + "|".join(PRESETS)
    + r")-(?P<protocol>"
    + "|".join(PROTOCOLS)
    + r")-seed(?P<seed>\d+)(?:-ids(?P<ids>[0-9a-f]{12}))?\.pt$"
)
# Training settings that do not change the model a run trains (where it saves, whether it
# resumed, compilation) or that a protocol sets itself (holdout's epochs).
FREE = {"checkpoint", "resume", "compile", "identity", "spec"}


def legacy_spec(path: Path, state: dict[str, Any], data_dir: str) -> dict[str, Any]:
    """The spec (and the identity, under ``identity``) of a checkpoint without one, rebuilt from
    its name and its preset; refused unless that is unambiguous."""
    m = NAME.match(path.name)
    if m is None:
        raise CheckpointError(
            f"{path}: records no model configuration (written before checkpoints carried one) and "
            "its name is not one tiger_train_eval.py gives; re-create it with the script that "
            "trained it (tiger_train_eval.py, mf_train_eval.py, neural_train_eval.py)"
        )
    name, preset_name, protocol = m["name"], m["preset"], PROTOCOLS[m["protocol"]]
    # the folder asked about when it holds the data set of the name (the default --data-dir
    # beauty is named after its data set)
    folder = data_dir if Path(data_dir).name == m["dataset"] else m["dataset"]
    command = (
        f"python tiger_train_eval.py --data-dir {folder} --preset {preset_name} "
        f"--protocol {protocol.name} --models {name} --seed {m['seed']}"
    )
    fix = f"re-create it with `{command}` (its checkpoints carry the model configuration)"
    preset = PRESETS[preset_name]
    saved = state.get("config")
    wanted = asdict(preset.train[name])
    free = FREE | ({"epochs"} if protocol.name == "holdout" else set())
    differ = sorted(
        k
        for k in wanted
        if k not in free and (not isinstance(saved, dict) or saved.get(k) != wanted[k])
    )
    if differ:
        raise CheckpointError(
            f"{path}: records no model configuration, and it was not trained with the "
            f"{preset_name} preset's settings ({', '.join(differ[:3])} differ), so its model "
            f"cannot be rebuilt from the preset; {fix}"
        )
    identity = state.get("identity")
    if identity is None:
        if name == "sasrec" or m["ids"] is None or protocol.cold_fraction:
            raise CheckpointError(
                f"{path}: records neither its model configuration nor its data and split, so it "
                f"cannot be checked against the data; {fix}"
            )
        # The IDs' digest stands for the data: the IDs file is refused unless it is this data's.
        identity = {"protocol": protocol.name, "semantic_ids": m["ids"]}
    if name == "sasrec":
        cls, config = "SASRec", preset.sasrec.to_dict()
    else:
        cfg = replace(preset.tiger, encoder="item" if name == "tiger_item" else "token")
        cls, config = "Tiger", cfg.to_dict()
    return {
        "command": command,
        "dataset": m["dataset"],
        "data_dir": data_dir,
        "semantic_dir": data_dir,
        "items": None,  # the data checksum or the IDs' digest checks the item map
        "preset": preset_name,
        "protocol": protocol.name,
        "seed": int(m["seed"]),
        "class": cls,
        "name": name,
        "config": config,
        "legacy": True,
        "identity": identity,
        "split": {"kind": "leave_one_out", "seed": 0, "cold_fraction": protocol.cold_fraction},
    }
