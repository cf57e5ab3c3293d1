"""Plugins: a user's pruner, model and dataset, registered from a file outside prunebench.

Everything runs in subprocesses (the ``prunebench`` command), as a user runs it: a plugin
registers names for the whole process, which must not leak into the other tests' registries.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from mlflow import MlflowClient

from prunebench.bench.plugins import _registered
from prunebench.cli.main import main
from prunebench.record import DEFAULT_EXPERIMENT

REPO = Path(__file__).resolve().parents[1]

PLUGIN = '''"""A plugin as a user writes it: a pruner, a model and a dataset."""

import numpy as np
import torch
from torch import nn

import prunebench
from prunebench.pruners import EpochPlan, Pruner

__version__ = "1.2.3"


@prunebench.register_pruner
class Hardest(Pruner):
    """Each epoch, the samples with the highest last loss (unseen samples first)."""

    name = "hardest"

    def __init__(self, n, epochs, seed, device=None, prune_ratio=0.5):
        super().__init__(n, epochs, seed, device)
        self.prune_ratio = prune_ratio
        self.keep = max(1, round((1 - prune_ratio) * n))
        self.scores = torch.full((n,), float("inf"), device=self.device)

    def plan_epoch(self, epoch, progress=None):
        top = torch.topk(self.scores, self.keep).indices
        return EpochPlan(indices=self._shuffled(top), n=self.n)

    def observe(self, indices, losses):
        self._follow_device(losses)
        self.scores[indices] = losses.float()

    def _tensor_state(self):
        return {"scores": self.scores}


@prunebench.register_model("tiny_net")
def tiny_net(channels, num_classes, height):
    """A two-layer perceptron on the flattened image."""
    return nn.Sequential(
        nn.Flatten(),
        nn.Linear(channels * height * height, 32),
        nn.ReLU(),
        nn.Linear(32, num_classes),
    )


def blobs(split, data_dir):
    """Three classes of 8x8 grey images: a bright quadrant per class, plus noise."""
    rng = np.random.default_rng(0 if split == "train" else 1)
    n = 300 if split == "train" else 150
    labels = rng.integers(0, 3, n)
    images = rng.normal(60, 25, (n, 8, 8))
    for k, (rows, cols) in enumerate([(slice(0, 4), slice(0, 4)), (slice(4, 8), slice(4, 8))]):
        images[labels == k, rows, cols] += 120
    return np.clip(images, 0, 255).astype(np.uint8), labels


prunebench.register_dataset("blobs", blobs)
'''

PRESET = """
name = "own-workload"
plugins = ["toy_plugin.py"]
datasets = ["blobs"]
models = ["tiny_net"]
budget = "epochs:2"
seeds = [0]
prune_ratios = [0.5]
batch_size = 32
lr = 0.1
loader = "tensor"
device = "cpu"
num_threads = 1
eval_points = 1
accuracy_targets = [0.5]

[[pruners]]
name = "full"

[[pruners]]
name = "orderdp"

[[pruners]]
name = "hardest"
"""


def prunebench(cwd: Path, *argv: str) -> subprocess.CompletedProcess:
    """The ``prunebench`` command in ``cwd`` (this checkout first on the path)."""
    env = {**os.environ, "PYTHONPATH": f"{REPO}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    env.pop("PRUNEBENCH_PLUGINS", None)
    return subprocess.run(
        [sys.executable, "-m", "prunebench.cli", *argv],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


@pytest.mark.slow
def test_a_plugin_suite_on_two_workers_reports_its_names_and_version(tmp_path):
    (tmp_path / "toy_plugin.py").write_text(PLUGIN)
    (tmp_path / "preset.toml").write_text(PRESET)
    store = f"sqlite:///{tmp_path / 'mlflow.db'}"
    suite = prunebench(
        tmp_path, "suite", "preset.toml", "--workers", "2", "--tracking-uri", store,
        "--storage", f"sqlite:///{tmp_path / 'optuna.db'}", "--quiet", "--system-metrics", "0",
    )  # fmt: skip
    assert suite.returncode == 0, suite.stderr[-3000:]
    assert "all 3 cells finished" in suite.stdout

    client = MlflowClient(store)
    experiment = client.get_experiment_by_name("own-workload")
    runs = client.search_runs([experiment.experiment_id], "tags.`prunebench.kind` = 'train'")
    assert sorted(run.data.params["pruner"] for run in runs) == ["full", "hardest", "orderdp"]
    for run in runs:  # every run uses the plugin's dataset and model: its version is recorded
        assert run.info.status == "FINISHED"
        assert run.data.params["plugin.toy_plugin"] == "1.2.3"
        assert (run.data.params["dataset"], run.data.params["model"]) == ("blobs", "tiny_net")
    hardest = next(run for run in runs if run.data.params["pruner"] == "hardest")
    assert hardest.data.metrics["realized_prune_ratio"] == 0.5  # 150 of 300 samples per epoch

    report = prunebench(
        tmp_path, "report", "--experiment", "own-workload", "--out", "report",
        "--tracking-uri", store, "--plugin", "toy_plugin.py",
    )  # fmt: skip
    assert report.returncode == 0, report.stderr[-3000:]
    html = (tmp_path / "report" / "index.html").read_text()
    for name in ("hardest", "tiny_net", "blobs", "orderdp"):
        assert name in html, name


def test_a_broken_plugin_is_one_line_and_exit_2(tmp_path, monkeypatch, capsys):
    # In this process: a plugin that fails registers nothing (the registries stay as they are).
    monkeypatch.chdir(tmp_path)
    (tmp_path / "broken.py").write_text("import no_such_module_here\n")
    (tmp_path / "twice.py").write_text(
        "import prunebench\n"
        "from prunebench.pruners.orderdp import OrderDP\n\n"
        "@prunebench.register_pruner\n"
        "class Again(OrderDP):\n"
        "    name = 'orderdp'\n"
    )
    (tmp_path / "raises.py").write_text("raise ValueError('bad setting\\nsecond line')\n")
    before = {key: set(names) for key, names in _registered().items()}
    for plugin, words in [
        ("broken.py", "cannot be loaded (ModuleNotFoundError"),
        ("twice.py", "'orderdp' is registered twice"),
        ("missing.py", "no such file"),
        ("raises.py", "cannot be loaded (ValueError: bad setting)"),
        ("no_such_plugin_module", "cannot be loaded"),
    ]:
        code = main(["run", "--plugin", plugin, "--dataset", "synthetic", "--budget", "epochs:1"])
        lines = capsys.readouterr().err.strip().splitlines()
        assert code == 2, plugin
        assert len(lines) == 1 and words in lines[0], (plugin, lines)
    assert not (tmp_path / "mlflow.db").exists()  # nothing written
    assert _registered() == before
    assert "PRUNEBENCH_PLUGINS" not in os.environ


def test_an_installed_packages_entry_point_plugin_loads_with_its_distribution_version(tmp_path):
    """An installed distribution (its metadata on the path) naming a module in the group."""
    site = tmp_path / "site"
    info = site / "ep_workload-2.5.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: ep-workload\nVersion: 2.5\n")
    (info / "entry_points.txt").write_text("[prunebench.plugins]\nep_workload = ep_workload\n")
    (site / "ep_workload.py").write_text(
        "import prunebench\nfrom torch import nn\n\n"
        "@prunebench.register_model('ep_net')\n"
        "def ep_net(channels, num_classes, height):\n"
        "    return nn.Sequential(nn.Flatten(), nn.Linear(channels * height**2, num_classes))\n"
    )
    preset = PRESET.split("[[pruners]]")[0].replace('plugins = ["toy_plugin.py"]\n', "")
    preset = preset.replace('["blobs"]', '["synthetic"]').replace('["tiny_net"]', '["ep_net"]')
    (tmp_path / "preset.toml").write_text(preset + '[[pruners]]\nname = "orderdp"\n')
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(REPO), str(site), os.environ.get("PYTHONPATH", "")]),
    }
    env.pop("PRUNEBENCH_PLUGINS", None)
    # No --plugin: every command loads the group's plugins, so the cells validate with ep_net.
    dry = subprocess.run(
        [sys.executable, "-m", "prunebench.cli", "suite", "preset.toml", "--dry-run"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert dry.returncode == 0, dry.stderr[-2000:]
    assert "synthetic/ep_net/orderdp/0.5" in dry.stdout
    # The module has no __version__: the version is its distribution's.
    code = (
        "from prunebench.bench.plugins import load_entry_point_plugins\n"
        "(plugin,) = load_entry_point_plugins()\n"
        "print(plugin.module, plugin.version, sorted(plugin.names['model']))\n"
    )
    shown = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=600
    )
    assert shown.stdout.split() == ["ep_workload", "2.5", "['ep_net']"], shown.stderr[-2000:]


@pytest.mark.slow
def test_each_process_of_a_two_process_run_loads_the_plugin(tmp_path):
    (tmp_path / "toy_plugin.py").write_text(PLUGIN)
    run = prunebench(
        tmp_path, "run", "--plugin", "toy_plugin.py", "--dataset", "blobs", "--model",
        "tiny_net", "--pruner", "hardest", "--prune-ratio", "0.5", "--budget", "epochs:2",
        "--batch-size", "32", "--nproc", "2", "--device", "cpu", "--loader", "tensor",
        "--threads", "1", "--quiet",
    )  # fmt: skip
    assert run.returncode == 0, run.stderr[-3000:]
    client = MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    experiment = client.get_experiment_by_name(DEFAULT_EXPERIMENT)
    (logged,) = client.search_runs([experiment.experiment_id], "tags.`prunebench.kind` = 'train'")
    assert logged.data.params["device_count"] == "2"
    assert logged.data.params["plugin.toy_plugin"] == "1.2.3"
    assert logged.data.metrics["realized_prune_ratio"] == 0.5
