"""The process group of a torchrun launch: who this process is, and the few collectives we use.

``torchrun`` starts one process per device and tells each its place through the environment
(RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR, MASTER_PORT). A plain ``python script.py`` run has
no process group: every function here then answers for one process (rank 0 of 1) and
communicates nothing, so single-process runs take exactly the code paths they always took.
torch is imported only to join a group: asking for the rank costs nothing in torch-free code
(the reporting module writes on rank 0 only).
"""

from __future__ import annotations

import atexit
import gc
import os
import sys
from collections.abc import Callable, Iterable, Sequence
from types import ModuleType
from typing import Any, TypeVar

T = TypeVar("T")
R = TypeVar("R")
TORCHRUN_ENV = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")


def _group() -> ModuleType | None:
    """torch.distributed when this process has joined a group, else None (no torch import)."""
    dist = sys.modules.get("torch.distributed")
    return dist if dist is not None and dist.is_available() and dist.is_initialized() else None


def launched_by_torchrun() -> bool:
    """True when the environment carries torchrun's rendezvous variables."""
    return all(name in os.environ for name in TORCHRUN_ENV)


def init_from_env(device: str) -> str:
    """Join torchrun's process group (nccl on CUDA, gloo otherwise); returns this process's device.

    On CUDA each process takes the GPU of its LOCAL_RANK (``cuda`` becomes ``cuda:<local
    rank>``). Without torchrun's variables, or when the group exists already, nothing changes.
    """
    if not launched_by_torchrun() or _group() is not None:
        return device
    import torch
    import torch.distributed as dist

    if device.startswith("cuda"):
        device = f"cuda:{int(os.environ['LOCAL_RANK'])}"
        torch.cuda.set_device(device)
        backend = "nccl"
    else:
        backend = "gloo"
    dist.init_process_group(backend, device_id=torch.device(device) if backend == "nccl" else None)
    atexit.register(shutdown, wait_for_peers=False)
    return device


def shutdown(wait_for_peers: bool = True) -> None:
    """Leave the process group: every script once its work is done (utils/runtime/errors.py),
    and at exit after a failure (registered by :func:`init_from_env`, without waiting).

    After a success the ranks first meet at a barrier, so none closes its connections while a
    peer still finishes the last collective; then unreachable objects that may still hold the
    group (a DistributedDataParallel wrapper left in a reference cycle) are freed while the
    interpreter is whole. A gloo group torn down mid-exchange or during interpreter teardown can
    abort the process at exit. A failing rank does not wait: its peers may never reach the
    barrier.
    """
    dist = _group()
    if dist is None:
        return
    if wait_for_peers:
        dist.barrier()
    gc.collect()
    dist.destroy_process_group()


def world_size() -> int:
    dist = _group()
    return dist.get_world_size() if dist is not None else 1


def rank() -> int:
    dist = _group()
    return dist.get_rank() if dist is not None else 0


def is_main() -> bool:
    """Rank 0: the one process that writes results, plots, predictions and checkpoints."""
    return rank() == 0


def is_distributed() -> bool:
    """More than one process trains the same model."""
    return world_size() > 1


def barrier() -> None:
    dist = _group()
    if dist is not None:
        dist.barrier()


def shard_bounds(n: int, size: int | None = None, index: int | None = None) -> tuple[int, int]:
    """Rank ``index``'s contiguous part [lo, hi) of ``n`` rows among ``size`` ranks (default:
    this process in its group): sizes differ by at most one, and the parts in rank order are
    the rows in order."""
    size = world_size() if size is None else size
    r = rank() if index is None else index
    base, extra = divmod(n, size)
    lo = r * base + min(r, extra)
    return lo, lo + base + (r < extra)


def broadcast_object(obj: Any, src: int = 0) -> Any:
    """``obj`` as rank ``src`` has it, on every rank (picklable objects)."""
    dist = _group()
    if dist is None:
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=src)
    return box[0]


def all_gather_objects(obj: Any) -> list[Any]:
    """Every rank's ``obj``, in rank order, on every rank."""
    dist = _group()
    if dist is None:
        return [obj]
    out: list[Any] = [None] * world_size()
    dist.all_gather_object(out, obj)
    return out


def all_reduce_sum(t: Any) -> Any:
    """The sum of tensor ``t`` over ranks, in place (a scalar or small tensor on the device)."""
    dist = _group()
    if dist is not None:
        dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return t


def map_shared(
    fn: Callable[[T], R], items: Sequence[T], wrap: Callable[[list[T]], Iterable[T]] = iter
) -> list[R]:
    """``[fn(x) for x in items]`` with the items shared out: rank r computes items r, r + world,
    ... (round robin keeps length-sorted batches balanced), and every rank gets all results in
    item order. ``fn`` must return picklable values (numpy arrays, numbers); ``wrap`` may add a
    progress bar over this rank's items. One process computes every item, in order.
    """
    size, r = world_size(), rank()
    mine = [fn(x) for x in wrap(list(items[r::size]))]
    if size == 1:
        return mine
    out: list[Any] = [None] * len(items)
    for k, part in enumerate(all_gather_objects(mine)):
        out[k::size] = part
    return out
