"""Loader throughput per backend at 32x32x3 with augmentation, and the cost of a per-epoch plan.

Each epoch gets a fresh plan (a random half of the split, like a 50%-pruned epoch) through
set_plan, and its batches are consumed without a model, so the numbers are the loader's alone.
Prints images/s per backend, the plan switch as a share of an epoch, and FFCV's one-off first
epoch (numba compilation), the .beton checksum's cost per GB, against the targets of the data issue:
tensor >= 150k img/s, FFCV >= 30k img/s (2-core CPU), plan switch < 1% of an epoch, one FFCV
Loader per split. All numbers come from this one process; the machines are shared and noisy.

    python benchmarks/loaders.py [--device cuda] [--repeats 5] [--samples 50000] [--threads 1]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

import torch

from prunebench.datasets import build_loader, synthetic_spec

TARGET_IMAGES_PER_SECOND = {"tensor": 150_000, "ffcv": 30_000}
TARGET_SWITCH_SHARE = 0.01


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def consume(loader, device: torch.device) -> tuple[int, float]:
    """Iterate one epoch; (samples, seconds)."""
    start = time.perf_counter()
    count = 0
    for _images, _labels, indices in loader:
        count += len(indices)
    synchronize(device)
    return count, time.perf_counter() - start


def bench_backend(backend: str, spec, args, data_dir: str) -> dict[str, float]:
    device = torch.device(args.device)
    built = time.perf_counter()
    loader = build_loader(
        spec,
        "train",
        backend=backend,
        batch_size=args.batch_size,
        device=device,
        augment=True,
        data_dir=data_dir,
    )
    build_seconds = time.perf_counter() - built
    generator = torch.Generator().manual_seed(0)
    n = loader.num_samples
    pipeline = getattr(loader, "_loader", None)  # FFCV's Loader: must stay the same object

    loader.set_plan(torch.randperm(n, generator=generator), epoch=0)
    _, first_epoch = consume(loader, device)  # FFCV compiles its pipeline here
    rates, switches, epochs = [], [], []
    for epoch in range(1, args.repeats + 1):
        plan = torch.randperm(n, generator=generator)[: n // 2]
        synchronize(device)
        start = time.perf_counter()
        loader.set_plan(plan, epoch=epoch)
        synchronize(device)
        switches.append(time.perf_counter() - start)
        count, seconds = consume(loader, device)
        rates.append(count / seconds)
        epochs.append(seconds)
    assert pipeline is getattr(loader, "_loader", None), "the FFCV Loader was rebuilt"
    return {
        "build_s": build_seconds,
        "first_epoch_s": first_epoch,
        "images_per_s": statistics.median(rates),
        "switch_ms": statistics.median(switches) * 1e3,
        "switch_share": statistics.median(s / e for s, e in zip(switches, epochs, strict=True)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--samples", type=int, default=50_000)
    parser.add_argument("--batch-size", type=int, default=512)
    parser.add_argument("--backends", default="tensor,ffcv")
    parser.add_argument(
        "--threads", type=int, default=None, help="torch threads (default: torch's)"
    )
    args, _ = parser.parse_known_args()  # nox passes the same arguments to every benchmark
    if args.threads:
        torch.set_num_threads(args.threads)

    spec = synthetic_spec(train_size=args.samples, test_size=16)
    print(
        f"loaders: {args.samples} synthetic 3x32x32 images, batch {args.batch_size}, flip + "
        f"translate, half-size plan per epoch, device {args.device}, "
        f"{torch.get_num_threads()} torch threads, median of {args.repeats} epochs"
    )
    # Shared machines: with more runnable processes than cores, torch's intra-op threads stall
    # (then --threads 1 shows what the loader itself costs).
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    header = f"{'backend':8} {'img/s':>10} {'target':>8} {'ratio':>6} {'switch':>9} {'share':>7}"
    print(header + f" {'1st epoch':>10} {'build':>7}")
    with tempfile.TemporaryDirectory(prefix="prunebench-bench-") as data_dir:
        for backend in args.backends.split(","):
            try:
                result = bench_backend(backend, spec, args, data_dir)
            except ImportError as error:
                print(f"{backend:8} skipped: {error}")
                continue
            target = TARGET_IMAGES_PER_SECOND[backend]
            ratio = result["images_per_s"] / target
            share = result["switch_share"]
            verdict = "ok" if ratio >= 1 and share < TARGET_SWITCH_SHARE else "BELOW TARGET"
            print(
                f"{backend:8} {result['images_per_s']:>10,.0f} {target:>8,} {ratio:>6.2f} "
                f"{result['switch_ms']:>7.2f}ms {share:>7.2%} {result['first_epoch_s']:>9.2f}s "
                f"{result['build_s']:>6.1f}s  {verdict}"
            )
        bench_checksum(data_dir, args.repeats)
    print("switch = set_plan (validate + augmentation draw); share = switch / epoch time")


def bench_checksum(data_dir: str, repeats: int) -> None:
    """Cost of the .beton checksum verified on first open: seconds per GB, from the page cache."""
    from prunebench.datasets.ffcv_files import file_sha256

    betons = sorted(Path(data_dir).rglob("*.beton"), key=lambda p: p.stat().st_size)
    if not betons:
        print("checksum: no .beton written (FFCV skipped)")
        return
    path = betons[-1]
    size_gb = path.stat().st_size / 1e9
    file_sha256(path)  # warm the page cache: this measures the hash, not the disk
    seconds = []
    for _ in range(repeats):
        start = time.perf_counter()
        file_sha256(path)
        seconds.append(time.perf_counter() - start)
    per_gb = statistics.median(seconds) / size_gb
    print(
        f"checksum: sha256 of {path.name} ({size_gb * 1e3:.0f} MB, cached) "
        f"{1 / per_gb:.2f} GB/s = {per_gb:.2f} s per GB, once per file per process"
    )


if __name__ == "__main__":
    main()
