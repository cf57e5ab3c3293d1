"""`prunebench --help` stays fast: the parser and the run schema import no torch, MLflow, Optuna."""

from __future__ import annotations

import subprocess
import sys

import pytest

from prunebench.cli.main import SUBCOMMANDS, main

HEAVY = ("torch", "torchvision", "mlflow", "optuna")


def _heavy_imports(code: str) -> list[str]:
    check = f"{code}\nimport sys\nprint(','.join(m for m in {HEAVY!r} if m in sys.modules))"
    result = subprocess.run(
        [sys.executable, "-c", check], capture_output=True, text=True, check=True
    )
    return [name for name in result.stdout.strip().split(",") if name]


def test_top_level_parser_imports_nothing_heavy():
    code = "from prunebench.cli.main import build_parser\nbuild_parser('').format_help()"
    assert _heavy_imports(code) == []


def test_run_schema_imports_nothing_heavy():
    code = "from prunebench.bench.config import RunConfig\nRunConfig.schema()"
    assert _heavy_imports(code) == []


def test_top_level_help_lists_every_command(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["--help"])
    assert exit_.value.code == 0
    words = capsys.readouterr().out.split()
    assert all(name.rpartition(".")[2] in words for name in SUBCOMMANDS)
