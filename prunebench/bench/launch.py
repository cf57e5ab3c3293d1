"""Starting and joining the processes of a data-parallel run (torch's elastic launcher, torchrun).

:func:`process_group` turns the environment (WORLD_SIZE and the rest, as torchrun sets them) into
the run's :class:`~prunebench.bench.distributed.Dist`; :func:`launch` starts N local processes as
one torchrun job.
"""

from __future__ import annotations

import contextlib
import datetime
import os
import signal
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import torch
import torch.distributed as torch_dist

from prunebench.bench.devices import device_for_rank, resolve_device, share_launched_threads
from prunebench.bench.distributed import Dist, GroupDist
from prunebench.errors import ConfigError, UsageError

ENV_KEYS = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")
"""What torchrun (and ``prunebench run --nproc``) sets in each process's environment."""
_TIMEOUT = datetime.timedelta(minutes=30)


def environment_world_size() -> int:
    """WORLD_SIZE from the environment (1 when not started by torchrun or ``--nproc``)."""
    text = os.environ.get("WORLD_SIZE", "1")
    try:
        return int(text)
    except ValueError:
        raise UsageError(f"WORLD_SIZE={text!r} is not an integer; unset it or fix it") from None


def in_process_group() -> bool:
    """Whether this process is one of several: started by torchrun or a launcher, or joined."""
    joined = torch_dist.is_available() and torch_dist.is_initialized()
    return joined or environment_world_size() > 1


@contextlib.contextmanager
def process_group(device_name: str) -> Iterator[Dist]:
    """The run's :class:`Dist`: joins torchrun's process group when WORLD_SIZE > 1.

    An already initialized default group (a caller's) is used and left open; a group joined here
    (NCCL on CUDA, gloo on CPU, rendezvous from MASTER_ADDR/MASTER_PORT) is left on exit.
    """
    if torch_dist.is_available() and torch_dist.is_initialized():
        local_rank = int(os.environ.get("LOCAL_RANK", torch_dist.get_rank()))
        dist: Dist = GroupDist(device_for_rank(device_name, local_rank), owns_group=False)
    elif environment_world_size() > 1:
        missing = [key for key in ENV_KEYS if key not in os.environ]
        if missing:
            raise UsageError(
                f"WORLD_SIZE is set but {', '.join(missing)} is not; start the run with torchrun "
                "or prunebench run --nproc N"
            )
        device = device_for_rank(device_name, int(os.environ["LOCAL_RANK"]))
        if device.type == "cuda":
            torch.cuda.set_device(device)
        torch_dist.init_process_group(
            backend="nccl" if device.type == "cuda" else "gloo",
            init_method="env://",
            timeout=_TIMEOUT,
            device_id=device if device.type == "cuda" else None,
        )
        dist = GroupDist(device, owns_group=True)
    else:
        dist = Dist(resolve_device(device_name))
    try:
        yield dist
    finally:
        dist.close()


def _launched(function: Callable[..., Any], args: tuple) -> tuple[str, Any]:
    """One launched process: run ``function``; a user error comes back as a value, not a crash."""
    share_launched_threads()  # as torchrun: the CPUs shared among the processes
    try:
        from prunebench.bench.plugins import load_inherited_plugins

        load_inherited_plugins()  # the parent's plugins: the run may name their pruner or model
        return "ok", function(*args)
    except UsageError as error:
        return "usage", str(error)


def launch(nproc: int, function: Callable[..., Any], *args: Any) -> list[Any]:
    """Run ``function(*args)`` in ``nproc`` local processes joined as one torchrun job.

    torch's elastic launcher (what torchrun runs) starts the processes with RANK, WORLD_SIZE,
    LOCAL_RANK, MASTER_ADDR and MASTER_PORT set, on a free local port, and stops the others when
    one fails. Returns every rank's return value, rank 0 first; a UsageError raised in a process
    is raised here.
    """
    from torch.distributed.launcher.api import LaunchConfig, elastic_launch

    if nproc < 1:
        raise ConfigError(f"--nproc must be at least 1, got {nproc}")
    config = LaunchConfig(
        min_nodes=1,
        max_nodes=1,
        nproc_per_node=nproc,
        run_id=f"prunebench-{uuid.uuid4().hex[:12]}",
        rdzv_backend="c10d",
        rdzv_endpoint="localhost:0",
        max_restarts=0,
        start_method="spawn",
    )
    # The launcher installs SIGTERM/SIGINT/SIGHUP/SIGQUIT handlers in this process and leaves
    # them; put the caller's back (a suite worker launches many runs).
    signals = [signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGQUIT]
    handlers = {number: signal.getsignal(number) for number in signals}
    try:
        outcomes = elastic_launch(config, _launched)(function, args)
    finally:
        for number, handler in handlers.items():
            if handler is not None:
                signal.signal(number, handler)
    results = [outcomes[rank] for rank in sorted(outcomes)]
    for kind, value in results:
        if kind == "usage":
            raise UsageError(value)
    return [value for _, value in results]


__all__ = ["ENV_KEYS", "environment_world_size", "in_process_group", "launch", "process_group"]
