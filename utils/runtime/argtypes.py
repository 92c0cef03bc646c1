"""argparse ``type=`` checks shared by every script, so a bad flag fails at parse time with a
message.

Without them ``--epochs 0`` trains nothing and still writes results, and
``--batch-size 0`` or ``--device tpu`` crash deep inside a run, after the split
or the embeddings were already computed.
"""

from __future__ import annotations

import argparse
import math
import re
from collections.abc import Callable

DEVICE_PATTERN = re.compile(r"auto|cpu|mps|cuda(:\d+)?")


def _number(kind: type, text: str) -> float | int:
    try:
        value = kind(text)
    except ValueError:
        expected = "an integer" if kind is int else "a number"
        raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}") from None
    if kind is float and not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"expected a finite number, got {text!r}")
    return value


def _bounded(
    kind: type, low: float, inclusive: bool, high: float | None = None, what: str = ""
) -> Callable[[str], float]:
    def check(text: str) -> float:
        value = _number(kind, text)
        too_low = value < low if inclusive else value <= low
        if too_low or (high is not None and value >= high):
            raise argparse.ArgumentTypeError(f"must be {what}, got {text}")
        return value

    check.__name__ = what.replace(" ", "_")  # argparse names the type in its messages
    return check


positive_int = _bounded(int, 0, inclusive=False, what="at least 1")
non_negative_int = _bounded(int, 0, inclusive=True, what="0 or more")
positive_float = _bounded(float, 0.0, inclusive=False, what="greater than 0")
non_negative_float = _bounded(float, 0.0, inclusive=True, what="0 or more")
fraction = _bounded(float, 0.0, inclusive=True, high=1.0, what="in [0, 1)")


def finite_float(text: str) -> float:
    return float(_number(float, text))


def device_name(text: str) -> str:
    """auto, cpu, cuda, cuda:N or mps; whether the machine has it is checked at set-up."""
    if not DEVICE_PATTERN.fullmatch(text):
        raise argparse.ArgumentTypeError(
            f"unknown device {text!r}; choose auto, cpu, cuda, cuda:N or mps"
        )
    return text
