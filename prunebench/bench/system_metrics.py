"""MLflow's own system-metrics sampling for one training run.

System metrics are MLflow's (``mlflow.system_metrics``: CPU and memory through psutil, disk,
network, and per-GPU utilization, memory and power through NVML from nvidia-ml-py), logged by its
``SystemMetricsMonitor`` for one explicit run id and tracking URI, so no global MLflow state
(active run, ``mlflow.enable_system_metrics_logging``) is involved.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch

SUITE_SYSTEM_METRICS_INTERVAL_S = 10.0
"""Suite runs' sampling interval (MLflow's default). Measured on a loaded 2-core CPU with SQLite
(benchmarks/system_metrics.py): one sample ~70 ms wall, mostly the store's write, and epochs
sampled every 0.25 s ran 19% longer, i.e. ~0.5% at 10 s: under the 1% target."""


@contextlib.contextmanager
def system_metrics(
    tracking_uri: str, run_id: str, interval_s: float | None, resume: bool = False
) -> Iterator[None]:
    """Log MLflow's ``system/*`` metrics to ``run_id`` every ``interval_s`` s (None or 0: off).

    The environment variable MLFLOW_SYSTEM_METRICS_SAMPLING_INTERVAL, when set, overrides the
    interval (MLflow's rule). A resumed run continues the metrics' steps. Samples are taken while
    the body runs; the last, incomplete interval is not logged.
    """
    if not interval_s:
        yield
        return
    import psutil
    from mlflow.system_metrics.system_metrics_monitor import SystemMetricsMonitor

    # psutil measures CPU use since its previous call; without this the first sample reads 0.
    psutil.cpu_percent()
    monitor = SystemMetricsMonitor(
        run_id, sampling_interval=interval_s, resume_logging=resume, tracking_uri=tracking_uri
    )
    monitor.start()
    try:
        yield
    finally:
        monitor.finish()


def nvml_index(device: torch.device) -> int | None:
    """NVML's index of CUDA ``device`` (None off GPUs, or when NVML cannot name it).

    torch numbers the GPUs CUDA_VISIBLE_DEVICES lets it see (``cuda:0`` may be physical GPU 3),
    while NVML, and so MLflow's per-GPU system metrics, number every GPU of the machine. The
    device's UUID is the same in both, so it names the GPU without parsing the variable.
    """
    if device.type != "cuda":
        return None
    try:
        import pynvml

        pynvml.nvmlInit()
        uuid = str(torch.cuda.get_device_properties(device).uuid)
        return int(pynvml.nvmlDeviceGetIndex(pynvml.nvmlDeviceGetHandleByUUID(f"GPU-{uuid}")))
    except Exception:  # no NVML or a MIG slice: no GPU utilization rather than another GPU's
        return None
