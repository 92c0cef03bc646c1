"""Products of flags that bound memory: each flag within its own range (argtypes) can still
multiply into tens of GiB with the others (``--negatives 256 --batch-size 1048576 --dim 1024``:
9 GB of embeddings per MF batch), so the tensors a run will build are estimated from the flags
(and the data's size where it counts) and refused in one line before any is allocated.
"""

from __future__ import annotations

import math

from utils.runtime.errors import UsageError

# One run's largest tensors together: a third of the 24 GiB machine this toolkit targets, so the
# data, the model and the evaluation keep the rest.
MEMORY_BUDGET = 8 << 30
FLOAT_BYTES = 4


def check_product(factors: dict[str, int], copies: int, what: str) -> None:
    """Refuse (UsageError) when ``copies`` float32 tensors of the product of ``factors`` (flag or
    key -> value) exceed MEMORY_BUDGET; the message names every factor, the estimate and the
    ceiling."""
    estimate = math.prod(factors.values()) * copies * FLOAT_BYTES
    if estimate <= MEMORY_BUDGET:
        return
    shown = " x ".join(f"{name} {value:,}" for name, value in factors.items())
    raise UsageError(
        f"{shown}: about {estimate / 2**30:,.1f} GiB for {what} ({copies} float32 copies), over "
        f"the {MEMORY_BUDGET >> 30} GiB ceiling of this 24 GiB machine; lower one of them"
    )
