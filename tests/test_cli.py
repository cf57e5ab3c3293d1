"""`prunebench run`: exit codes, one-line errors that write nothing, a real run and a failed one."""

from __future__ import annotations

import pytest
import torch
from mlflow import MlflowClient

from prunebench.cli.main import ArgumentParser, main
from prunebench.cli.run import add_parser, config_from_args
from prunebench.errors import ConfigError
from prunebench.pruners import available_pruners

GOOD = [
    "run",
    "--dataset", "synthetic",
    "--model", "small_cnn",
    "--pruner", "orderdp",
    "--prune-ratio", "0.5",
    "--budget", "epochs:2",
    "--subset", "400",
    "--batch-size", "64",
    "--lr", "0.05",
    "--device", "cpu",
    "--quiet",
]  # fmt: skip


def with_option(argv: list[str], flag: str, value: str | None) -> list[str]:
    """``argv`` with ``flag`` set to ``value`` (replaced if present; dropped if value is None)."""
    args = list(argv)
    if flag in args:
        at = args.index(flag)
        del args[at : at + 2]
    return args if value is None else [*args, flag, value]


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture
def workdir(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    return tmp_path


BAD_INPUTS = {
    "unknown pruner": (
        with_option(GOOD, "--pruner", "magic"),
        "unknown pruner 'magic'; choose one of: ",
    ),
    "unknown dataset": (
        with_option(GOOD, "--dataset", "mnist"),
        "unknown dataset 'mnist'; choose one of: ",
    ),
    "unknown model": (with_option(GOOD, "--model", "vgg"), "unknown model 'vgg'; choose one of: "),
    "ratio 1": (with_option(GOOD, "--prune-ratio", "1.0"), "prune ratio must be in [0, 1)"),
    "ratio negative": (with_option(GOOD, "--prune-ratio", "-0.2"), "prune ratio must be in [0, 1)"),
    "ratio not a number": (with_option(GOOD, "--prune-ratio", "half"), "--prune-ratio"),
    "q > s": (
        [*with_option(GOOD, "--prune-ratio", None), "--param", "exploration=0.5", "--param",
         "exploitation=1.5"],
        "exploitation must be in (0, 1]",
    ),
    "ratio for full": (
        with_option(GOOD, "--pruner", "full"),
        "the full pruner trains on all data, so its prune ratio must be 0",
    ),
    "zero epochs": (with_option(GOOD, "--budget", "epochs:0"), "must be positive"),
    "negative samples": (with_option(GOOD, "--budget", "samples:-10"), "must be positive"),
    "zero time": (with_option(GOOD, "--budget", "time:0"), "must be positive"),
    "unknown budget": (with_option(GOOD, "--budget", "weeks:3"), "is not epochs:N"),
    "missing budget": (with_option(GOOD, "--budget", None), "--budget"),
    "zero batch": (with_option(GOOD, "--batch-size", "0"), "batch size must be a positive"),
    "negative batch": (with_option(GOOD, "--batch-size", "-64"), "batch size must be a positive"),
    "param without =": ([*GOOD, "--param", "exploration"], "--param expects KEY=VALUE"),
    "param without value": ([*GOOD, "--param", "exploration="], "--param expects KEY=VALUE"),
    "param list": ([*GOOD, "--param", "period=[1,2]"], "expected a single value"),
    "param unknown": ([*GOOD, "--param", "bogus=1"], "has no parameter 'bogus'"),
    "param twice": (
        [*GOOD, "--param", "initial_score=1", "--param", "initial_score=2"],
        "given twice",
    ),
    "ratio twice": ([*GOOD, "--param", "prune_ratio=0.3"], "give the prune ratio once"),
    "data dir is a file": (
        [*GOOD, "--data-dir", "/etc/passwd/prunebench-data"],
        "data directory /etc/passwd/prunebench-data: /etc/passwd is not a directory",
    ),
    "unreachable server": (
        [*GOOD, "--tracking-uri", "http://127.0.0.1:9"],
        "tracking server http://127.0.0.1:9 is unreachable",
    ),
    "missing store dir": (
        [*GOOD, "--tracking-uri", "sqlite:////no/such/dir/mlflow.db"],
        "directory /no/such/dir does not exist",
    ),
    "unknown loader": (with_option(GOOD, "--loader", "dali"), "unknown loader 'dali'"),
    "subset too large": (with_option(GOOD, "--subset", "999999"), "larger than"),
    "zero lr": (with_option(GOOD, "--lr", "0"), "learning rate must be a positive"),
    "unknown flag": ([*GOOD, "--epochs", "3"], "unrecognized arguments: --epochs 3"),
    "zero processes": ([*GOOD, "--nproc", "0"], "number of processes must be a positive integer"),
    "batch not divisible": (
        [*with_option(GOOD, "--batch-size", "64"), "--nproc", "3"],
        "batch size 64 does not divide among 3 processes",
    ),
}  # fmt: skip


@pytest.mark.parametrize("name", list(BAD_INPUTS))
def test_bad_input_is_one_line_exit_2_nothing_written(name, workdir, capsys):
    argv, message = BAD_INPUTS[name]
    assert main(argv) == 2
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1, captured.err
    assert lines[0].startswith("prunebench: error: ")
    assert message in lines[0]
    assert "Traceback" not in captured.err and captured.out == ""
    assert list(workdir.iterdir()) == [], "bad input must write nothing"


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the no-GPU message; a GPU is present")
def test_cuda_without_gpu_is_exit_2(workdir, capsys):
    assert main(with_option(GOOD, "--device", "cuda")) == 2
    assert "no CUDA device is available; use --device cpu" in capsys.readouterr().err
    assert list(workdir.iterdir()) == []


def test_no_command_is_exit_2(capsys):
    assert main([]) == 2
    assert "run" in capsys.readouterr().err  # the help lists the commands


def test_run_help_lists_every_pruner(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["run", "--help"])
    assert exit_.value.code == 0
    words = set(capsys.readouterr().out.replace(",", " ").split())
    assert set(available_pruners()) <= words


def test_run_finishes_and_is_tracked(workdir, capsys):
    assert main([*GOOD, "--experiment", "cli", "--param", "initial_score=inf"]) == 0
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err == ""  # --quiet
    client = MlflowClient(f"sqlite:///{workdir / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("cli")
    (run,) = client.search_runs([experiment.experiment_id])
    assert run.info.status == "FINISHED"
    assert run.data.params["pruner.initial_score"] == "inf"
    assert run.data.params["budget"] == "epochs:2"
    assert len(list((workdir / "checkpoints").glob("*.pt"))) == 1

    # Without --quiet a result line is printed; --resume of a finished run trains nothing new.
    argv = [a for a in GOOD if a != "--quiet"]
    assert main([*argv, "--experiment", "cli", "--param", "initial_score=inf", "--resume"]) == 0
    assert f"run {run.info.run_id} finished" in capsys.readouterr().out
    assert len(client.search_runs([experiment.experiment_id])) == 1


def test_unreadable_checkpoint_on_resume_is_exit_2(workdir, capsys):
    parser = ArgumentParser(prog="prunebench")
    add_parser(parser.add_subparsers())
    cfg = config_from_args(parser.parse_args(GOOD))
    (workdir / "checkpoints").mkdir()
    (workdir / "checkpoints" / f"{cfg.config_hash()}.pt").write_bytes(b"truncated")
    assert main([*GOOD, "--resume"]) == 2
    assert "is unreadable" in capsys.readouterr().err
    assert not (workdir / "mlflow.db").exists()


def test_diverged_run_is_exit_1_and_failed(workdir, capsys):
    argv = with_option(with_option(GOOD, "--lr", "1e9"), "--pruner", "full")
    argv = with_option(argv, "--prune-ratio", None)
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert "failed: training loss became nan at epoch 0" in err
    client = MlflowClient(f"sqlite:///{workdir / 'mlflow.db'}")
    (run,) = client.search_runs([client.get_experiment_by_name("prunebench").experiment_id])
    assert run.info.status == "FAILED"
    assert run.data.tags["prunebench.failure_reason"] == "training loss became nan at epoch 0"


def test_public_recipe_and_grad_alignment_flags():
    parser = ArgumentParser(prog="prunebench")
    add_parser(parser.add_subparsers())
    plain = config_from_args(parser.parse_args(GOOD))
    assert plain.label_smoothing == 0.0 and not plain.cycle_momentum and not plain.grad_alignment
    argv = [*GOOD, "--public-recipe", "--grad-alignment", "--grad-alignment-probe", "100"]
    cfg = config_from_args(parser.parse_args(argv))
    assert (cfg.label_smoothing, cfg.lr_pct_start, cfg.cycle_momentum) == (0.1, 0.3, True)
    assert (cfg.base_momentum, cfg.max_momentum) == (0.85, 0.95)
    assert cfg.grad_alignment and cfg.grad_alignment_probe == 100
    explicit = config_from_args(parser.parse_args([*argv, "--label-smoothing", "0.2"]))
    assert explicit.label_smoothing == 0.2 and explicit.cycle_momentum
    zero = config_from_args(parser.parse_args([*argv, "--label-smoothing", "0"]))
    assert zero.label_smoothing == 0.0  # an explicit default still wins over the recipe


def test_schema_flags_for_switches_off_by_default_and_number_lists():
    parser = ArgumentParser(prog="prunebench")
    add_parser(parser.add_subparsers())
    argv = [*GOOD, "--cycle-momentum", "--grad-alignment-checkpoints", "0.5,1"]
    cfg = config_from_args(parser.parse_args(argv))
    assert cfg.cycle_momentum and cfg.lr_pct_start == 0.25 and cfg.label_smoothing == 0.0
    assert cfg.grad_alignment_checkpoints == (0.5, 1.0) and cfg.augment
    with pytest.raises(ConfigError, match="must increase strictly"):
        config_from_args(parser.parse_args([*GOOD, "--grad-alignment-checkpoints", "0.6,0.4"]))
