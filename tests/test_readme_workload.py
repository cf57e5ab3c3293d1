"""The README's "Benchmark your own workload" runs as written: its files, then its commands.

The section's ``Save as `FILE`:`` blocks are written to an empty folder and its bash block is
run there line by line, ``prunebench`` being this checkout's command (a subprocess, as a user
runs it: the plugin's names must not enter this process's registries).
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
from mlflow import MlflowClient

REPO = Path(__file__).resolve().parents[1]
SECTION = "## Benchmark your own workload"


def readme_section() -> str:
    text = (REPO / "README.md").read_text()
    start = text.index(SECTION)
    end = text.find("\n## ", start + len(SECTION))
    return text[start : end if end >= 0 else len(text)]


def saved_files(section: str) -> dict[str, str]:
    """``Save as `NAME`:`` followed by a fenced block: NAME -> the block's text."""
    pattern = re.compile(r"Save as `([^`]+)`:\s*\n\n```\w*\n(.*?)```", re.DOTALL)
    return dict(pattern.findall(section))


def commands(section: str) -> list[list[str]]:
    """The first bash block's command lines, each as argv."""
    block = re.search(r"```bash\n(.*?)```", section, re.DOTALL).group(1)
    lines = block.replace("\\\n", " ").splitlines()
    return [shlex.split(line) for line in lines if line.strip() and not line.startswith("#")]


@pytest.mark.slow
def test_the_readme_workload_section_runs_as_written(tmp_path):
    section = readme_section()
    files = saved_files(section)
    assert set(files) == {"my_workload.py", "my_workload.toml"}
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    env = {**os.environ, "PYTHONPATH": f"{REPO}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    env.pop("PRUNEBENCH_PLUGINS", None)
    steps = commands(section)
    assert [argv[:2] for argv in steps] == [["prunebench", "suite"], ["prunebench", "report"]]
    for argv in steps:
        result = subprocess.run(
            [sys.executable, "-m", "prunebench.cli", *argv[1:]],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=900,
        )
        assert result.returncode == 0, (argv, result.stderr[-3000:])

    client = MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("my-workload")
    runs = client.search_runs([experiment.experiment_id], "tags.`prunebench.kind` = 'train'")
    pruners = {run.data.params["pruner"] for run in runs}
    assert "hardest" in pruners and {"full", "orderdp", "infobatch"} <= pruners
    assert all(run.info.status == "FINISHED" for run in runs)
    assert all(run.data.params["plugin.my_workload"] == "0.1" for run in runs)
    html = (tmp_path / "my-report" / "index.html").read_text()
    for name in ("hardest", "bar_net", "bars"):
        assert name in html, name
    # The plugin's pruner trains on half the samples, as its prune_ratio says.
    hardest = next(run for run in runs if run.data.params["pruner"] == "hardest")
    assert hardest.data.metrics["realized_prune_ratio"] == 0.5
