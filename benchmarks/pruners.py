"""Per-epoch cost of every pruner: plan_epoch and observe at CIFAR and ImageNet-1K sizes.

Prints medians over repeats measured in this one process, plus the ratio to the OrderDP target
(25 ms per plan at n = 1,281,167 on a 2-core CPU). On CUDA, also checks that observe() never
synchronizes the host (torch.cuda.set_sync_debug_mode("error")).

    python benchmarks/pruners.py [--device cuda] [--repeats 7]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from prunebench.pruners import available_pruners, create_pruner

SIZES = (50_000, 1_281_167)
BATCH = 1024
ORDERDP_TARGET_MS = 25.0


def timed(fn, device: torch.device) -> float:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    start = time.perf_counter()
    fn()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return (time.perf_counter() - start) * 1e3


def bench(name: str, n: int, device: torch.device, repeats: int) -> tuple[float, float]:
    params = {} if name == "full" else {"prune_ratio": 0.7}
    if name == "infobatch":
        params["anneal"] = False
    pruner = create_pruner(name, n=n, epochs=100, seed=0, device=device, **params)
    gen = torch.Generator(device=device).manual_seed(0)
    losses = torch.rand(n, generator=gen, device=device) * 3
    pruner.observe(torch.arange(n, device=device), losses)  # every sample seen once
    plan_ms, observe_ms = [], []
    for epoch in range(1, repeats + 1):
        plan_ms.append(timed(lambda e=epoch: pruner.plan_epoch(e), device))
        indices = pruner.plan_epoch(epoch).indices.to(device)
        batch_losses = torch.rand(indices.numel(), generator=gen, device=device)
        batches = list(zip(indices.split(BATCH), batch_losses.split(BATCH), strict=True))

        def observe_all(batches=batches):
            for idx, loss in batches:
                pruner.observe(idx, loss)

        observe_ms.append(timed(observe_all, device) / len(batches))
    return statistics.median(plan_ms), statistics.median(observe_ms)


def check_no_sync(device: torch.device) -> str:
    """observe() under sync debug mode 'error': any host synchronization raises."""
    failures = []
    for name in available_pruners():
        params = {} if name == "full" else {"prune_ratio": 0.5}
        pruner = create_pruner(name, n=10_000, epochs=10, seed=0, device=device, **params)
        idx = torch.arange(BATCH, device=device)
        loss = torch.rand(BATCH, device=device)
        pruner.observe(idx, loss)  # first call may move state to the device
        torch.cuda.synchronize(device)
        torch.cuda.set_sync_debug_mode("error")
        try:
            pruner.observe(idx, loss)
        except RuntimeError as error:
            failures.append(f"{name}: {error}")
        finally:
            torch.cuda.set_sync_debug_mode("default")
    return "observe(): no host sync in any pruner" if not failures else "; ".join(failures)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    device = torch.device(args.device)
    print(f"device {device}, threads {torch.get_num_threads()}, median of {args.repeats}")
    print(f"{'pruner':<16}{'n':>11}{'plan ms':>10}{'observe us/batch':>18}")
    for n in SIZES:
        for name in available_pruners():
            plan_ms, observe_ms = bench(name, n, device, args.repeats)
            print(f"{name:<16}{n:>11,}{plan_ms:>10.2f}{observe_ms * 1e3:>18.1f}")
            if name == "orderdp" and n == SIZES[-1]:
                orderdp_ms = plan_ms
    ratio = orderdp_ms / ORDERDP_TARGET_MS
    verdict = "meets" if ratio <= 1 else "MISSES"
    print(
        f"orderdp plan at n={SIZES[-1]:,}: {orderdp_ms:.1f} ms = {ratio:.2f} x the "
        f"{ORDERDP_TARGET_MS:.0f} ms target ({verdict} it; public code ~157 ms on CPU)"
    )
    if device.type == "cuda":
        print(check_no_sync(device))


if __name__ == "__main__":
    main()
