"""MLflow and Optuna as their users see them: dataset inputs, experiment kind, system metrics, the
MLflow UI's runs view (a real server, a headless Chromium screenshot), the report's run links and
the Optuna dashboard. Every run is a real training run on synthetic data in a real SQLite store.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import optuna
import pandas as pd
import pytest
import torch
from chromium import MISSING, chromium, keep_artifact
from mlflow import MlflowClient
from PIL import Image

from prunebench.bench.budgets import parse_budget
from prunebench.bench.config import RunConfig
from prunebench.bench.datasets_record import data_digest, split_dataset
from prunebench.bench.run import run_tags, train_run
from prunebench.bench.tracking import RunTracker
from prunebench.datasets import build_loader, get_spec, locate_source, stratified_subset
from prunebench.mlflow_store import get_or_create_experiment, open_store, prepare_experiment
from prunebench.record import EXPERIMENT_KIND_TAG, TRAINING_KIND
from prunebench.reports.build import build, compute, render_html
from prunebench.reports.runs import load_experiment
from prunebench.reports.ui_links import experiment_url, run_url
from prunebench.stores import redact_url

EXPERIMENT = "tracked"
SAMPLING_S = 0.1  # short runs need a short interval to collect several samples
BIN = Path(sys.executable).parent


def config(**overrides) -> RunConfig:
    values = {
        "dataset": "synthetic",
        "model": "small_cnn",
        "pruner": "orderdp",
        "pruner_params": {"prune_ratio": 0.5},
        "budget": parse_budget("epochs:2"),
        "subset": 400,
        "batch_size": 64,
        "lr": 0.05,
        "device": "cpu",
    }
    values.update(overrides)
    return RunConfig(**values)


@pytest.fixture(scope="module")
def record(tmp_path_factory, _mlflow_template):
    """A store with an orderdp run (subset 400, system metrics), a full run (subset 300, none)
    and a failed run, all in an experiment that train_run created."""
    root = tmp_path_factory.mktemp("tracked")
    shutil.copyfile(_mlflow_template, root / "mlflow.db")
    uri = f"sqlite:///{root / 'mlflow.db'}"
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with pytest.MonkeyPatch.context() as patch:
            patch.chdir(root)  # artifacts land under the store's directory
            sampled = train_run(config(), uri, EXPERIMENT, system_metrics_s=SAMPLING_S)
            full_config = config(pruner="full", pruner_params={}, subset=300)
            full = train_run(full_config, uri, EXPERIMENT)
            # A run that crashed before logging its params, as a killed worker leaves it.
            crashed = config(seed=1)
            failed = RunTracker.start(uri, EXPERIMENT, crashed.run_name(), run_tags(crashed, None))
            failed.finish("FAILED", "RuntimeError: injected for the report's failed-run table")
    finally:
        torch.set_num_threads(threads)
    client = MlflowClient(uri)
    return {
        "uri": uri,
        "root": root,
        "client": client,
        "experiment_id": client.get_experiment_by_name(EXPERIMENT).experiment_id,
        "sampled": sampled.run_id,
        "full": full.run_id,
        "failed": failed.run_id,
    }


def inputs_of(client: MlflowClient, run_id: str) -> dict[str, object]:
    """context tag -> the logged dataset entity."""
    return {
        {t.key: t.value for t in item.tags}["mlflow.data.context"]: item.dataset
        for item in client.get_run(run_id).inputs.dataset_inputs
    }


# ---------------------------------------------------------------- dataset inputs


def expected_digest(split: str, size: int | None) -> str:
    """The digest of ``size`` stratified samples of the synthetic split, from the source itself."""
    spec = get_spec("synthetic")
    source = locate_source(spec, split, None)
    labels = source.read().labels
    indices = None if size is None else stratified_subset(labels, size, 0)
    return data_digest(spec, split, source.stamp, len(labels) if size is None else size, indices)


def test_runs_log_their_data_as_dataset_inputs(record):
    client = record["client"]
    sampled, full = inputs_of(client, record["sampled"]), inputs_of(client, record["full"])
    assert set(sampled) == set(full) == {"train", "test"}
    assert sampled["train"].name == "synthetic-train" and sampled["test"].name == "synthetic-test"
    assert sampled["train"].digest == expected_digest("train", 400)
    assert full["train"].digest == expected_digest("train", 300)
    assert sampled["test"].digest == full["test"].digest == expected_digest("test", None)
    profile = json.loads(sampled["train"].profile)
    assert profile["num_rows"] == 400 and profile["split_rows"] == 10_000
    assert json.loads(full["train"].profile)["num_rows"] == 300
    assert json.loads(sampled["test"].profile)["num_rows"] == 2_000
    schema = json.loads(sampled["train"].schema)["mlflow_tensorspec"]
    assert json.loads(schema["features"])[0]["tensor-spec"]["shape"] == [-1, 32, 32, 3]
    assert sampled["train"].source_type == "code"  # generated data: no files to point at


def test_changing_the_subset_or_the_files_changes_the_digest():
    spec = get_spec("synthetic")
    labels = locate_source(spec, "train", None).read().labels
    indices = stratified_subset(labels, 400, 0)
    base = data_digest(spec, "train", "stamp-a", 400, indices)
    swapped = indices.copy()
    swapped[0] = np.setdiff1d(np.arange(len(labels)), indices)[0]  # one sample replaced
    assert data_digest(spec, "train", "stamp-a", 400, np.sort(swapped)) != base
    assert data_digest(spec, "train", "stamp-b", 400, indices) != base  # other source files
    assert data_digest(spec, "test", "stamp-a", 400, indices) != base
    assert data_digest(spec, "train", "stamp-a", 400, indices.copy()) == base


@pytest.mark.skipif(
    not Path("/usr/share/datasets/fashion-mnist").is_dir(),
    reason="Debian's dataset-fashion-mnist is not installed",
)
def test_file_datasets_point_at_their_folder():
    loader = build_loader("fashion_mnist", "test", subset=500)
    dataset = split_dataset(loader, "test")
    assert dataset.source._get_source_type() == "local"
    assert json.loads(dataset.source.to_json())["uri"].endswith("fashion-mnist")
    assert dataset.to_dict()["digest"] == dataset.digest and len(dataset.digest) == 16


# ---------------------------------------------------------------- experiment kind


def test_created_experiments_are_tagged_as_model_training(record, tmp_path, mlflow_sqlite):
    client = record["client"]
    assert client.get_experiment(record["experiment_id"]).tags[EXPERIMENT_KIND_TAG] == TRAINING_KIND
    local = MlflowClient(mlflow_sqlite)
    prepare_experiment(mlflow_sqlite, "suite-made")  # the suite's path
    assert local.get_experiment_by_name("suite-made").tags[EXPERIMENT_KIND_TAG] == TRAINING_KIND
    # Existing experiments keep their tags, with a kind or without one.
    genai = local.create_experiment("genai", tags={EXPERIMENT_KIND_TAG: "genai_development"})
    plain = local.create_experiment("plain")
    assert get_or_create_experiment(local, "genai") == genai
    RunTracker.start(mlflow_sqlite, "plain", "r", {}).finish("FINISHED")
    assert local.get_experiment(genai).tags[EXPERIMENT_KIND_TAG] == "genai_development"
    assert EXPERIMENT_KIND_TAG not in local.get_experiment(plain).tags


# ---------------------------------------------------------------- system metrics


def test_system_metrics_appear_in_a_short_run(record):
    client = record["client"]
    history = client.get_metric_history(record["sampled"], "system/cpu_utilization_percentage")
    assert len(history) >= 3, f"{len(history)} samples at {SAMPLING_S} s"
    assert sorted(m.step for m in history) == list(range(len(history)))
    assert all(0.0 <= m.value <= 100.0 for m in history)
    metrics = client.get_run(record["sampled"]).data.metrics
    assert {"system/system_memory_usage_megabytes", "system/disk_usage_percentage"} <= set(metrics)
    off = client.get_run(record["full"]).data.metrics
    assert not [key for key in off if key.startswith("system/")]


# ---------------------------------------------------------------- report


def test_report_links_runs_shows_utilization_and_masks_the_store(record, tmp_path):
    ui = "http://ui.example:5000"
    out, _ = build(EXPERIMENT, tmp_path / "report", record["uri"], log_run=False, ui_url=ui)
    page = (out / "index.html").read_text()
    for run in ("sampled", "full", "failed"):
        link = run_url(ui, record["experiment_id"], record[run])
        assert link.startswith(f"{ui}/#/experiments/{record['experiment_id']}/runs/{record[run]}")
        assert f'href="{link}"' in page
    utilization = pd.read_csv(out / "tables" / "utilization.csv").set_index("run_id")
    history = record["client"].get_metric_history(
        record["sampled"], "system/cpu_utilization_percentage"
    )
    mean = np.mean([m.value for m in history])
    assert utilization.loc[record["sampled"], "cpu_utilization_mean"] == pytest.approx(mean)
    assert utilization.loc[record["full"], "samples"] == 0
    assert "Seeds with system metrics" in page and f'<td class="num">{mean:.0f}</td>' in page

    plain, _ = build(EXPERIMENT, tmp_path / "plain", record["uri"], log_run=False, ui_url="")
    assert "/#/experiments/" not in (plain / "index.html").read_text()

    data = load_experiment(open_store(record["uri"]), EXPERIMENT, record["uri"])
    data.tracking_uri = "postgresql://bench:s3cret@db.example:5432/mlflow"
    masked = render_html(compute(data))
    assert "s3cret" not in masked and "postgresql://bench:***@db.example:5432/mlflow" in masked
    assert redact_url("sqlite:///mlflow.db") == "sqlite:///mlflow.db"


# ---------------------------------------------------------------- servers


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(url: str, process: subprocess.Popen, timeout_s: float) -> int:
    """The HTTP status of ``url`` once the server answers (fails if it exits or never does)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"the server exited with {process.returncode}: {process.stdout.read()}")
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                return response.status
        except urllib.error.HTTPError as error:
            return error.code
        except OSError:
            time.sleep(1)
    pytest.fail(f"{url} did not answer within {timeout_s} s")


@contextlib.contextmanager
def server(command: list[str], cwd: Path) -> Iterator[subprocess.Popen]:
    """Run ``command`` in its own process group; stop that group (only it) afterwards."""
    process = subprocess.Popen(
        command,
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        yield process
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def get_json(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=30) as response:
        return json.loads(response.read())


def post_json(url: str, body: dict) -> dict:
    request = urllib.request.Request(
        url, json.dumps(body).encode(), {"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())


@pytest.mark.skipif(shutil.which("chromium") is None, reason=MISSING)
def test_mlflow_ui_serves_the_runs_view(record, tmp_path):
    port = free_port()
    ui = f"http://127.0.0.1:{port}"
    command = [str(BIN / "mlflow"), "server", "--backend-store-uri", record["uri"]]
    command += ["--host", "127.0.0.1", "--port", str(port), "--workers", "1"]
    with server(command, tmp_path) as process:
        assert wait_for(f"{ui}/health", process, timeout_s=240) == 200
        found = post_json(
            f"{ui}/ajax-api/2.0/mlflow/runs/search", {"experiment_ids": [record["experiment_id"]]}
        )
        runs = {run["info"]["run_id"]: run for run in found["runs"]}
        sampled = runs[record["sampled"]]
        names = {d["dataset"]["name"] for d in sampled["inputs"]["dataset_inputs"]}
        assert names == {"synthetic-train", "synthetic-test"}
        run_name = sampled["info"]["run_name"]
        # MLflow 3.17's UI shows training pages by its workflow switch, which the link sets.
        page = experiment_url(ui, record["experiment_id"])
        dom = chromium(tmp_path, "--virtual-time-budget=60000", "--dump-dom", page, timeout_s=240)
        assert run_name in dom, "the experiment page does not list the runs"
        shot = tmp_path / "mlflow-runs.png"
        chromium(
            tmp_path,
            "--virtual-time-budget=60000",
            f"--screenshot={shot}",
            "--window-size=1600,1000",
            page,
            timeout_s=240,
        )
    with Image.open(shot) as image:
        assert image.size == (1600, 1000)
        assert len(image.convert("RGB").getcolors(maxcolors=1 << 20) or []) > 20  # not blank
    kept = keep_artifact(shot, "mlflow-runs.png")
    print(f"MLflow UI screenshot: {shot} (copied to {kept})")


def test_optuna_dashboard_answers(tmp_path):
    storage = f"sqlite:///{tmp_path / 'optuna.db'}"
    study = optuna.create_study(storage=storage, study_name="prunebench-search-demo")
    study.optimize(lambda trial: trial.suggest_float("prune_ratio", 0.1, 0.9), n_trials=3)
    port = free_port()
    command = [str(BIN / "optuna-dashboard"), storage, "--host", "127.0.0.1", "--port", str(port)]
    with server(command, tmp_path) as process:
        assert wait_for(f"http://127.0.0.1:{port}/", process, timeout_s=120) == 200
        (study_info,) = get_json(f"http://127.0.0.1:{port}/api/studies")["study_summaries"]
        detail = get_json(f"http://127.0.0.1:{port}/api/studies/{study_info['study_id']}")
    assert study_info["study_name"] == "prunebench-search-demo"
    assert len(detail["trials"]) == 3


def test_gpu_utilization_is_read_from_the_runs_nvml_index(tmp_path):
    """A run on cuda:0 whose GPU NVML calls 3 (CUDA_VISIBLE_DEVICES=3) reads system/gpu_3_*,
    not GPU 0's; a run without the param (older runs) falls back to the device ordinal."""
    from prunebench.reports.mlflow_ui import run_utilization

    client = MlflowClient(f"sqlite:///{tmp_path / 'gpu.db'}")
    experiment = client.create_experiment("gpu")
    runs = []
    for params in ({"device": "cuda:0", "nvml_index": "3"}, {"device": "cuda:0"}):
        run_id = client.create_run(experiment).info.run_id
        for key, value in params.items():
            client.log_param(run_id, key, value)
        for gpu, value in ((0, 10.0), (3, 90.0)):
            client.log_metric(run_id, f"system/gpu_{gpu}_utilization_percentage", value)
        runs.append({"run_id": run_id, **{f"params.{k}": v for k, v in params.items()}})
    table = run_utilization(client, pd.DataFrame(runs)).set_index("run_id")
    assert table["gpu_utilization_mean"].tolist() == [90.0, 10.0]


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device on this machine")
def test_nvml_index_names_the_gpu_torch_uses():
    import pynvml

    from prunebench.bench.system_metrics import nvml_index

    for ordinal in range(torch.cuda.device_count()):
        index = nvml_index(torch.device("cuda", ordinal))
        assert index is not None
        handle = pynvml.nvmlDeviceGetHandleByIndex(index)
        uuid = pynvml.nvmlDeviceGetUUID(handle)
        uuid = uuid.decode() if isinstance(uuid, bytes) else uuid
        assert uuid == f"GPU-{torch.cuda.get_device_properties(ordinal).uuid}"
