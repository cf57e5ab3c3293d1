"""The named presets shipped with prunebench: each parses, validates every cell and dry-runs."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

from prunebench.cli.main import main
from prunebench.cli.suite import contention_line
from prunebench.pruners import available_pruners
from prunebench.suite.presets import CONFIG_DIR, load_preset

NAMED = sorted(path.stem for path in CONFIG_DIR.glob("*.toml"))


@pytest.mark.parametrize("name", NAMED)
def test_named_preset_parses_and_validates_every_cell(name):
    preset = load_preset(name)  # parse_preset validates every cell's RunConfig
    assert preset.name == name and preset.cells()


def test_equal_time_preset_gives_every_pruner_half_of_full_datas_seconds():
    preset = load_preset("equal-time-fmnist")
    cells = [cfg for cfg in preset.cells() if cfg.comparison() == "equal_time"]
    assert {str(cfg.budget) for cfg in cells} == {"time-fraction:0.5"}
    assert len(cells) == len(preset.main_cells())  # every pruner, full data included
    assert {cfg.dataset for cfg in cells} == {"fashion_mnist"} and {c.device for c in cells} == {
        "auto"
    }
    labels = {cfg.label for cfg in cells}
    assert {"full", "random", "orderdp", "infobatch", "infobatch-anneal"} <= labels


@pytest.mark.parametrize("name", ["demo-fmnist", "equal-time-fmnist"])
def test_fashion_mnist_presets_dry_run_and_write_nothing(name, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    store = f"sqlite:///{tmp_path / 'mlflow.db'}"
    assert main(["suite", name, "--dry-run", "--tracking-uri", store]) == 0
    cells = len(load_preset(name).cells())
    assert f"suite {name}: {cells} cells ({cells} runs)" in capsys.readouterr().out
    assert list(Path(tmp_path).iterdir()) == []


def test_a_searchs_full_data_reference_is_the_suites_full_cell():
    """The (old) demo's full entry measures gradient alignment; the search's reference used the
    bare config, so it trained full data again under another hash and the report counted 4 runs.
    That demo is the preset unsaturated-fmnist-cnn now."""
    preset = load_preset("unsaturated-fmnist-cnn")
    cells = {cfg.seed: cfg.config_hash() for cfg in preset.main_cells() if cfg.pruner == "full"}
    reference = {
        seed: preset.reference_config("fashion_mnist", "small_cnn", seed).config_hash()
        for seed in cells
    }
    assert reference == cells
    unlisted = preset.reference_config("fashion_mnist", "small_cnn", 7)
    assert unlisted.seed == 7 and unlisted.grad_alignment


@pytest.mark.skipif(torch.cuda.is_available(), reason="CPU threads only matter for CPU runs")
def test_a_suite_asking_for_more_cpu_threads_than_cores_says_so_once(tmp_path, monkeypatch, capsys):
    """Two workers of 2-thread runs on 2 cores made every run ~10x slower (an equal-time suite
    then measured the contention); the suite now says so before its first cell. (The demo runs
    one thread a run; the unsaturated contrast keeps the default two.)"""
    preset = load_preset("unsaturated-fmnist-cnn")
    assert contention_line(preset, workers=1, cores=2) is None
    assert "2 worker(s) x 2 threads = 4 CPU threads on 2 cores" in contention_line(
        preset, workers=2, cores=2
    )
    monkeypatch.chdir(tmp_path)
    workers = (os.cpu_count() or 1) + 1
    store = f"sqlite:///{tmp_path / 'mlflow.db'}"
    argv = ["suite", "unsaturated-fmnist-cnn", "--dry-run", "--workers", str(workers)]
    argv += ["--tracking-uri", store]
    assert main(argv) == 0
    assert capsys.readouterr().err.count(f"warning: {workers} worker(s) x 2 threads") == 1


def test_methods_preset_runs_the_fields_methods_on_the_demos_workload():
    preset, demo = load_preset("methods-fmnist"), load_preset("demo-fmnist")
    labels = {cfg.label for cfg in preset.main_cells()}
    methods = {"seta", "kakurenbo", "selective_backprop", "ies", "orderdp_iteration"}
    static = {"el2n", "grand", "forgetting", "static_random"}
    assert labels == methods | static | {"full", "random", "orderdp", "infobatch"}
    workload = ("datasets", "models", "budget", "seeds", "margin", "same_compute")
    assert [getattr(preset, key) for key in workload] == [getattr(demo, key) for key in workload]
    for key in ("subset", "lr", "batch_size", "augment", "loader", "num_threads"):
        assert preset.run_settings[key] == demo.run_settings[key], key


def test_the_demo_runs_every_pruner_and_gives_each_ratio_knob_one_the_same_search():
    demo = load_preset("demo-fmnist")
    assert {cfg.pruner for cfg in demo.main_cells()} == set(available_pruners())
    assert len(demo.seeds) >= 5
    ratios = {cfg.target_prune_ratio() for cfg in demo.main_cells() if cfg.pruner == "random"}
    assert ratios == {0.3, 0.7}
    search = demo.search
    assert set(search.pruners) == {"random", "rs2", "epsilon_greedy", "ucb", "infobatch", "orderdp"}
    settings = (search.sampler, search.seeds, search.confirm_seeds, search.confirm_max_seeds)
    assert settings == ("grid", 5, 5, 15)
