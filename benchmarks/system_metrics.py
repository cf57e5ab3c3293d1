"""Cost of MLflow system-metrics sampling during training (target: under 1% of training time).

(a) One sample as the monitor thread takes it (psutil CPU/memory, disk, network, NVML GPUs when
    present, the run-status read, and a log_batch of the sample to a SQLite store), timed
    directly; its share of training time at interval I is cost / I.
(b) End to end: full-data harness epochs with the monitor sampling at a deliberately short interval
    (--fast-interval) against epochs without it, in a random order each round after a warm-up
    round (benchmarks/_interleave.py); the overhead is the median of the per-round ratios, with
    its 95% interval. It scales with the sampling rate, so the suite interval's share is
    (b) x fast interval / suite interval.

    python benchmarks/system_metrics.py [--device cuda] [--rounds 9] [--subset 4000]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import torch
from _interleave import interleaved, median_interval
from mlflow import MlflowClient
from mlflow.system_metrics.system_metrics_monitor import SystemMetricsMonitor

from prunebench.bench.budgets import parse_budget
from prunebench.bench.config import RunConfig
from prunebench.bench.devices import device_kind
from prunebench.bench.distributed import Dist
from prunebench.bench.system_metrics import SUITE_SYSTEM_METRICS_INTERVAL_S, system_metrics
from prunebench.bench.trainer import Trainer

TARGET = 0.01


def sample_cost(tracking_uri: str, run_id: str, samples: int) -> tuple[list[float], list[float]]:
    """Wall and CPU seconds per sample: collect, read the run's status, aggregate, log, flush."""
    monitor = SystemMetricsMonitor(run_id, sampling_interval=1, tracking_uri=tracking_uri)
    wall, cpu = [], []
    for _ in range(samples):
        start, start_cpu = time.perf_counter(), time.thread_time()
        monitor.collect_metrics()
        MlflowClient(tracking_uri).get_run(run_id)
        monitor.publish_metrics(monitor.aggregate_metrics())
        monitor.mlflow_logger.flush()
        wall.append(time.perf_counter() - start)
        cpu.append(time.thread_time() - start_cpu)
    return wall, cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--rounds", type=int, default=9, help="timed epochs per variant")
    parser.add_argument("--subset", type=int, default=4000)
    parser.add_argument("--samples", type=int, default=50, help="samples timed in (a)")
    parser.add_argument("--fast-interval", type=float, default=0.25, help="seconds, for (b)")
    parser.add_argument("--threads", type=int, default=1)
    args, ignored = parser.parse_known_args()  # nox passes the same arguments to every benchmark
    if ignored:
        print(f"(ignoring {' '.join(ignored)})")
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    with tempfile.TemporaryDirectory(prefix="prunebench-sysmetrics-") as folder:
        uri = f"sqlite:///{Path(folder) / 'mlflow.db'}"
        client = MlflowClient(uri)
        experiment = client.create_experiment("bench", artifact_location=Path(folder).as_uri())
        wall, cpu = sample_cost(uri, client.create_run(experiment).info.run_id, args.samples)

        cfg = RunConfig(
            dataset="fashion_mnist",
            model="small_cnn",
            pruner="full",
            budget=parse_budget(f"epochs:{args.rounds + 1}"),
            subset=args.subset,
            lr=0.05,
            device=args.device,
        )
        plain, sampled = Trainer(cfg, Dist(device)), Trainer(cfg, Dist(device))
        run_id = client.create_run(experiment).info.run_id
        resume = {"off": False, "on": False}

        def epoch(name: str, trainer: Trainer, interval: float | None):
            def timed() -> float:
                before = trainer.counters.train_seconds
                with system_metrics(uri, run_id, interval, resume=resume[name]):
                    trainer.train_epoch(show_progress=False)
                resume[name] = True
                return trainer.counters.train_seconds - before

            return timed

        variants = {
            "off": epoch("off", plain, None),
            "on": epoch("on", sampled, args.fast_interval),
        }
        times = interleaved(variants, args.rounds)
        logged = len(client.get_metric_history(run_id, "system/cpu_utilization_percentage"))

    median, p90 = statistics.median(wall), statistics.quantiles(wall, n=10)[-1]
    share = median / SUITE_SYSTEM_METRICS_INTERVAL_S
    print(
        f"system-metrics benchmark: {device_kind(device)} ({torch.get_num_threads()} threads), "
        f"SQLite store, suite interval {SUITE_SYSTEM_METRICS_INTERVAL_S:g} s"
    )
    print(
        f"(a) one sample           wall median {1000 * median:.1f} ms (p90 {1000 * p90:.1f}), "
        f"CPU median {1000 * statistics.median(cpu):.1f} ms (the rest waits on the store)"
    )
    verdict = "ok" if share < TARGET else "ABOVE TARGET"
    print(f"    wall share at {SUITE_SYSTEM_METRICS_INTERVAL_S:g} s   {share:.3%}  ({verdict})")
    overhead = median_interval(times["on"] / times["off"] - 1)
    scale = args.fast_interval / SUITE_SYSTEM_METRICS_INTERVAL_S
    print(f"(b) epoch without        {median_interval(times['off']).text()} s")
    print(
        f"    epoch sampling every {args.fast_interval:g} s "
        f"{median_interval(times['on']).text()} s ({logged} samples logged)"
    )
    print(f"    overhead at {args.fast_interval:g} s     {overhead.text('+.2%')}")
    scaled_high = overhead.high * scale
    verdict = "ok" if scaled_high < TARGET else "ABOVE TARGET"
    print(
        f"    scaled to {SUITE_SYSTEM_METRICS_INTERVAL_S:g} s        {overhead.value * scale:+.3%} "
        f"(upper end {scaled_high:+.3%}: {verdict})"
    )


if __name__ == "__main__":
    main()
