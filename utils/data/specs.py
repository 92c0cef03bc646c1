"""The data sets the toolkit knows: the files of each layout, where each set goes, its official
checksums and counts, and the command that puts one in place.

Both the loaders (which name the command when a file is missing) and the preparation (which
places and checks the files) read these facts, so they live here, below both.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

P5_FILES = ("sequential_data.txt", "datamaps.json", "meta.json.gz")
P5_RATINGS = "rating_splits_augmented.pkl"
ML_FILES = ("u.data", "u.item")
# A user's own catalogue as prepare_data.py --dataset custom writes it (utils/data/canonical.py).
CUSTOM_FILES = ("interactions.csv", "items.jsonl", "dataset.json")


@dataclass(frozen=True)
class DatasetSpec:
    name: str
    required: tuple[str, ...]
    optional: tuple[str, ...]
    default_dir: str
    # sha256 of the official files, where the published file is known byte for byte.
    checksums: dict[str, str] = field(default_factory=dict)
    # Figures a correct copy must show (users, items, interactions).
    expected_counts: tuple[int, int, int] | None = None


SPECS: dict[str, DatasetSpec] = {
    "beauty": DatasetSpec(
        "beauty",
        P5_FILES,
        (P5_RATINGS,),
        "beauty",
        {
            "sequential_data.txt": "f85a84ab47d70e82bf0e7301804270af10fb51e127ab8f0885697d593f6f6d43",  # noqa: E501
            "datamaps.json": "715ab04838ff1ba21238475ed453a89e8c30aa6214b904d27a79e4168fc7b612",
        },
        (22363, 12101, 198502),
    ),
    "sports": DatasetSpec("sports", P5_FILES, (P5_RATINGS,), "data/sports"),
    "toys": DatasetSpec("toys", P5_FILES, (P5_RATINGS,), "data/toys"),
    "ml-100k": DatasetSpec(
        "ml-100k",
        ML_FILES,
        ("u.user", "u.genre", "u.info", "u.occupation", "README"),
        "data/ml-100k",
        {
            "u.data": "06416e597f82b7342361e41163890c81036900f418ad91315590814211dca490",
            "u.item": "553841ebc7de3a0fd0d6b62a204ea30c1e651aacfb2814c7a6584ac52f2c5701",
        },
        (943, 1682, 100000),
    ),
}


def prepare_hint(data_dir: Path) -> str:
    """The prepare_data.py command that fills ``data_dir``; --dataset only takes the names it
    knows."""
    command = "python prepare_data.py --dataset {} --data-dir {}"
    if data_dir.name in SPECS:
        return f"run `{command.format(data_dir.name, data_dir)}` to put the data there"
    return (
        f"run `{command.format('NAME --source FOLDER', data_dir)}` to put the data there "
        f"(NAME: one of {', '.join(sorted(SPECS))}; FOLDER: where its files are), or "
        f"`{command.format('custom --interactions FILE --items FILE', data_dir)}` for your own"
    )
