"""Where a run computes: its device, each process's share of the batch, and its thread count.

The one home of these rules (the run's config validation, the process group, the launcher and
the suite's workers all ask here). torch is imported inside the functions, so the run's schema
(which names DEFAULT_CPU_THREADS in its help) stays light enough for ``prunebench --help``.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from prunebench.errors import ConfigError, UsageError

if TYPE_CHECKING:
    import torch

DEFAULT_CPU_THREADS = 2
"""torch threads of a CPU run without --threads: a fixed number, not the machine's core count,
so a config computes the same numbers on any machine and under any number of suite workers."""


def resolve_device(name: str) -> torch.device:
    """``auto`` -> cuda if available, else cpu; otherwise the named device."""
    import torch

    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def device_for_rank(name: str, local_rank: int) -> torch.device:
    """The device of one of several processes: cuda:LOCAL_RANK on GPUs (one device per
    process), else cpu."""
    import torch

    if resolve_device(name).type != "cuda":
        return torch.device("cpu")
    if local_rank >= torch.cuda.device_count():
        raise UsageError(
            f"local rank {local_rank} has no GPU ({torch.cuda.device_count()} visible); start "
            "at most one process per GPU"
        )
    return torch.device("cuda", local_rank)


def check_device(name: str) -> None:
    """ConfigError unless ``name`` is auto, cpu, or a CUDA device this machine has."""
    if name in ("auto", "cpu"):
        return
    import torch

    try:
        device = torch.device(name)
    except (RuntimeError, ValueError):
        raise ConfigError(f"unknown device {name!r}; use auto, cpu, cuda or cuda:N") from None
    if device.type != "cuda":
        raise ConfigError(f"unsupported device {name!r}; use auto, cpu, cuda or cuda:N")
    if not torch.cuda.is_available():
        raise ConfigError(
            f"device {name!r} was asked for but no CUDA device is available; use --device cpu"
        )
    if device.index is not None and device.index >= torch.cuda.device_count():
        raise ConfigError(
            f"device {name!r} does not exist ({torch.cuda.device_count()} CUDA devices); pick "
            "another index"
        )


def device_kind(device: torch.device) -> str:
    """What the run is timed on: the GPU's name (e.g. "NVIDIA H200") or "cpu"."""
    import torch

    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return "cpu"


def check_batch_size(batch_size: int, world_size: int) -> int:
    """The per-rank batch size batch_size / world_size; ConfigError unless it divides evenly."""
    if world_size < 1:
        raise ConfigError(f"the number of processes must be at least 1, got {world_size}")
    if batch_size % world_size:
        raise ConfigError(
            f"batch size {batch_size} does not divide among {world_size} processes; pass a "
            f"batch size that is a multiple of {world_size}, or another --nproc"
        )
    return batch_size // world_size


def run_threads(num_threads: int | None, device: torch.device) -> int:
    """The torch thread count a run pins: its setting, else DEFAULT_CPU_THREADS on CPU.

    On CUDA the arithmetic runs on the GPU, so torch's own host default is kept.
    """
    import torch

    if num_threads is not None:
        return num_threads
    return DEFAULT_CPU_THREADS if device.type == "cpu" else torch.get_num_threads()


def share_launched_threads() -> None:
    """As torchrun: share the CPUs among the processes a launcher started on this machine.

    A CPU run then pins its own count per process (:func:`run_threads`); a CUDA run keeps this
    one for its host work. A user's OMP_NUM_THREADS wins.
    """
    if "OMP_NUM_THREADS" in os.environ:
        return
    import torch

    local_world = int(os.environ.get("LOCAL_WORLD_SIZE", "1"))
    torch.set_num_threads(max(1, (os.cpu_count() or 1) // local_world))
