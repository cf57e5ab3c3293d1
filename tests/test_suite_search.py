"""Suites and searches end to end: real training on synthetic data, real MLflow and Optuna."""

from __future__ import annotations

import multiprocessing
import threading
from pathlib import Path

import optuna
import pytest
from mlflow import MlflowClient
from optuna.trial import TrialState
from postgres_server import postgres_bin, postgres_server

from prunebench.bench.run import train_run
from prunebench.cli.main import main
from prunebench.errors import ConfigError
from prunebench.stats.lossless import is_lossless
from prunebench.stores import exclusive_lock
from prunebench.suite.presets import load_preset
from prunebench.suite.runner import plan, run_suite
from prunebench.suite.search import run_search, search_variants

TINY = """
name = "tiny"
datasets = ["synthetic"]
models = ["small_cnn"]
budget = "epochs:2"
seeds = [0, 1]
prune_ratios = [0.5]
subset = 400
batch_size = 64
lr = 0.05
accuracy_targets = [0.3]

[[pruners]]
name = "full"

[[pruners]]
name = "orderdp"
"""


@pytest.fixture
def stores(tmp_path, monkeypatch, mlflow_sqlite):
    """A preset file and fresh file stores, with the working directory inside tmp_path."""
    monkeypatch.chdir(tmp_path)
    preset = tmp_path / "tiny.toml"
    preset.write_text(TINY)
    return {
        "preset": preset,
        "tracking_uri": mlflow_sqlite,
        "storage_url": f"sqlite:///{tmp_path / 'optuna.db'}",
        "checkpoint_dir": tmp_path / "checkpoints",
    }


def runs_of(tracking_uri: str, experiment: str, kind: str = "train") -> list:
    client = MlflowClient(tracking_uri)
    found = client.get_experiment_by_name(experiment)
    if found is None:
        return []
    return client.search_runs(
        [found.experiment_id], filter_string=f"tags.`prunebench.kind` = '{kind}'", max_results=1000
    )


def suite_kwargs(stores) -> dict:
    return {k: stores[k] for k in ("tracking_uri", "storage_url", "checkpoint_dir")}


def assert_each_cell_once(preset, tracking_uri: str) -> None:
    runs = runs_of(tracking_uri, preset.name)
    hashes = [run.data.tags["prunebench.config_hash"] for run in runs]
    assert sorted(hashes) == sorted(cfg.config_hash() for cfg in preset.cells())
    assert all(run.info.status == "FINISHED" for run in runs)


def test_suite_runs_every_cell_and_a_rerun_is_a_no_op(stores, capsys):
    preset = load_preset(str(stores["preset"]))
    assert len(preset.cells()) == 4
    final = run_suite(preset, **suite_kwargs(stores))
    assert [state.action for state in final] == ["done"] * 4
    assert_each_cell_once(preset, stores["tracking_uri"])
    run = runs_of(stores["tracking_uri"], "tiny")[0]
    assert run.data.tags["prunebench.preset"] == "tiny"
    assert run.data.tags["prunebench.expected_seeds"] == "2"

    code = main(
        ["suite", str(stores["preset"]), "--tracking-uri", stores["tracking_uri"],
         "--storage", stores["storage_url"], "--checkpoint-dir", str(stores["checkpoint_dir"])]
    )  # fmt: skip
    assert code == 0
    assert "4 cells (4 finished, skipped)" in capsys.readouterr().out
    assert len(runs_of(stores["tracking_uri"], "tiny")) == 4


def test_an_interrupted_cell_resumes_in_its_own_run(stores):
    preset = load_preset(str(stores["preset"]))
    cell = preset.cells()[3]
    interrupted = train_run(
        cell, tracking_uri=stores["tracking_uri"], experiment="tiny",
        checkpoint_dir=stores["checkpoint_dir"], stop_after_epochs=1,
    )  # fmt: skip
    states = plan(preset, stores["tracking_uri"], stores["checkpoint_dir"])
    assert [s.action for s in states] == ["run", "run", "run", "resume"]
    run_suite(preset, **suite_kwargs(stores))
    assert_each_cell_once(preset, stores["tracking_uri"])
    resumed = MlflowClient(stores["tracking_uri"]).get_run(interrupted.run_id)
    assert resumed.info.status == "FINISHED"
    assert resumed.data.metrics["epochs_run"] == 2


def test_failed_cells_are_recorded_and_the_suite_carries_on(stores, capsys):
    stores["preset"].write_text(TINY.replace("lr = 0.05", "lr = 1e9").replace("[0, 1]", "[0]"))
    args = [
        "suite", str(stores["preset"]), "--tracking-uri", stores["tracking_uri"],
        "--storage", stores["storage_url"], "--checkpoint-dir", str(stores["checkpoint_dir"]),
    ]  # fmt: skip
    assert main(args) == 1  # both cells diverge: each is recorded, neither stops the other
    out = capsys.readouterr().out
    assert "tiny: 2 cells not finished" in out and "training loss became nan" in out
    runs = runs_of(stores["tracking_uri"], "tiny")
    assert sorted(run.info.status for run in runs) == ["FAILED", "FAILED"]
    assert main([*args, "--dry-run"]) == 0
    assert "2 cells (2 failed before, runs again)" in capsys.readouterr().out


def test_dry_run_shows_the_plan_and_writes_nothing(stores, capsys):
    Path("mlflow.db").unlink()
    code = main(["suite", str(stores["preset"]), "--dry-run"])
    assert code == 0
    assert "tiny: 4 cells (4 runs)" in capsys.readouterr().out
    assert not Path("mlflow.db").exists() and not Path("optuna.db").exists()


@pytest.mark.parametrize(
    "old,new,message",
    [
        ("lr = 0.05", "lr = 0.05\nbogus = 1", "unknown key 'bogus'"),
        ('budget = "epochs:2"', 'budget = "weeks:2"', "budget"),
        ("seeds = [0, 1]", 'seeds = "zero"', "'seeds' must be a non-empty list"),
        ("prune_ratios = [0.5]", "prune_ratios = [1.5]", "prune ratio must be in"),
        ('models = ["small_cnn"]', 'models = ["resnet1000"]', "unknown model 'resnet1000'"),
        ("batch_size = 64", "batch_size = 0", "batch size must be a positive integer"),
        ('name = "orderdp"', 'name = "oracle"', "unknown pruner 'oracle'"),
    ],
)
def test_bad_presets_fail_in_one_line_with_exit_2(stores, capsys, old, new, message):
    stores["preset"].write_text(TINY.replace(old, new))
    Path("mlflow.db").unlink()
    assert main(["suite", str(stores["preset"])]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("prunebench: error: ") and "\n" not in err
    assert message in err
    assert not Path("mlflow.db").exists() and not Path("optuna.db").exists()


def test_two_workers_on_one_file_store_run_each_cell_once(stores):
    preset = load_preset(str(stores["preset"]))
    final = run_suite(preset, workers=2, **suite_kwargs(stores))
    assert all(state.action == "done" for state in final)
    assert_each_cell_once(preset, stores["tracking_uri"])
    storage = optuna.storages.RDBStorage(stores["storage_url"])
    queue = optuna.load_study(
        study_name=f"prunebench-suite/tiny/{preset.digest()}/1", storage=storage
    )
    assert [t.state for t in queue.trials] == [TrialState.COMPLETE] * 4


needs_postgres = pytest.mark.skipif(
    postgres_bin() is None, reason="PostgreSQL server not installed (apt-get install postgresql)"
)


@needs_postgres
@pytest.mark.slow
def test_two_workers_sharing_postgresql_run_each_cell_once(stores):
    with postgres_server() as urls:
        preset = load_preset(str(stores["preset"]))
        stores = {**stores, "tracking_uri": urls["mlflow"], "storage_url": urls["optuna"]}
        run_suite(preset, workers=2, **suite_kwargs(stores))
        assert_each_cell_once(preset, urls["mlflow"])


# ------------------------------------------------------------------------------------- search
BOUNDARY = 0.6


def planted(pruner: str, params: dict, seed: int, tags: dict) -> tuple[float, float]:
    """Accuracy 0.9 (+ tiny seed noise) up to a prune ratio of 0.6, 0.8 beyond: a known answer."""
    if "prune_ratio" in params:
        ratio = params["prune_ratio"]
    elif "exploration" in params:
        ratio = 1 - params["exploration"] * params["exploitation"]
    else:
        ratio = 0.0
    return (0.9 if ratio <= BOUNDARY else 0.8) + 0.0002 * seed, ratio


@pytest.mark.parametrize("pruner", ["orderdp", "random"])
def test_search_finds_the_planted_lossless_boundary(stores, pruner):
    preset = load_preset(str(stores["preset"]))
    result = run_search(
        preset, pruner, trials=30, seeds=2, tracking_uri=stores["tracking_uri"],
        storage_url=stores["storage_url"], evaluate=planted,
    )  # fmt: skip
    assert result.best is not None
    assert BOUNDARY - 0.08 <= result.best["prune_ratio"] <= BOUNDARY
    assert result.tolerance == pytest.approx(0.001)  # seed std 0.00014 < 0.1 points
    assert all(row["lossless"] == (row["prune_ratio"] <= BOUNDARY) for row in result.frontier)
    # The report's rule gives the same verdict on the same seed accuracies.
    full = [planted("full", {}, seed, {})[0] for seed in (0, 1)]
    for row in result.frontier:
        accuracies = [planted(pruner, row["params"], seed, {})[0] for seed in (0, 1)]
        assert is_lossless(accuracies, full) == row["lossless"]
    (search_run,) = runs_of(stores["tracking_uri"], "tiny", kind="search")
    assert search_run.data.metrics["largest_lossless_ratio"] == result.best["prune_ratio"]
    trials = runs_of(stores["tracking_uri"], "tiny", kind="trial")
    assert len(trials) == 30 == len(result.frontier)
    assert {t.data.tags["mlflow.parentRunId"] for t in trials} == {search_run.info.run_id}
    assert search_run.data.params["search_variant"] == pruner == result.variant
    assert {t.data.tags["prunebench.variant"] for t in trials} == {pruner}
    again = run_search(
        preset, pruner, trials=30, seeds=2, tracking_uri=stores["tracking_uri"],
        storage_url=stores["storage_url"], evaluate=planted,
    )  # fmt: skip
    assert again.frontier == result.frontier  # a finished study is not searched further


def _search_worker(preset_path: str, urls: dict[str, str]) -> None:
    run_search(
        load_preset(preset_path), "orderdp", trials=8, seeds=2, tracking_uri=urls["mlflow"],
        storage_url=urls["optuna"], evaluate=planted,
    )  # fmt: skip


@needs_postgres
@pytest.mark.slow
def test_two_search_workers_sharing_postgresql_run_each_trial_once(stores):
    with postgres_server() as urls:
        url = urls["optuna"]
        context = multiprocessing.get_context("fork")
        workers = [
            context.Process(target=_search_worker, args=(str(stores["preset"]), urls))
            for _ in range(2)
        ]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join(timeout=300)
        assert [worker.exitcode for worker in workers] == [0, 0]
        (study,) = [
            optuna.load_study(study_name=s.study_name, storage=url)
            for s in optuna.get_all_study_summaries(url)
            if s.study_name.startswith("prunebench-search/")
        ]
        complete = study.get_trials(states=(TrialState.COMPLETE,))
        assert 8 <= len(study.trials) <= 9 and len(complete) == len(study.trials)
        trial_runs = runs_of(urls["mlflow"], "tiny", kind="trial")
        numbers = sorted(int(r.data.tags["optuna.trial_number"]) for r in trial_runs)
        assert numbers == sorted(t.number for t in complete)
        assert len(runs_of(urls["mlflow"], "tiny", kind="search")) == 1


VARIANTS = (
    TINY
    + """
[[pruners]]
name = "infobatch"
params = { anneal = false }

[[pruners]]
name = "infobatch"
label = "infobatch-anneal"
params = { anneal = true }
"""
)


def test_search_runs_each_labelled_variant_and_records_it(stores):
    stores["preset"].write_text(VARIANTS)
    preset = load_preset(str(stores["preset"]))
    assert search_variants(preset, "infobatch") == {
        "infobatch": {"anneal": False},
        "infobatch-anneal": {"anneal": True},
    }
    with pytest.raises(ConfigError, match="has variants infobatch, infobatch-anneal"):
        run_search(
            preset, "infobatch", trials=2, seeds=2, tracking_uri=stores["tracking_uri"],
            storage_url=stores["storage_url"], evaluate=planted,
        )  # fmt: skip
    seen = []

    def recording(pruner, params, seed, tags):
        if pruner == "infobatch":  # not the full-data reference
            seen.append((tags["prunebench.variant"], params["anneal"]))
        return planted(pruner, params, seed, tags)

    for label in ("infobatch", "infobatch-anneal"):
        result = run_search(
            preset, "infobatch", trials=2, seeds=2, tracking_uri=stores["tracking_uri"],
            storage_url=stores["storage_url"], evaluate=recording, variant=label,
        )  # fmt: skip
        assert result.variant == label and f"/infobatch/{label}/" in result.study_name
        study = optuna.load_study(study_name=result.study_name, storage=stores["storage_url"])
        assert study.user_attrs["variant"] == label
    assert sorted(set(seen)) == [("infobatch", False), ("infobatch-anneal", True)]
    searches = runs_of(stores["tracking_uri"], "tiny", kind="search")
    assert sorted(run.data.params["search_variant"] for run in searches) == [
        "infobatch",
        "infobatch-anneal",
    ]
    trials = runs_of(stores["tracking_uri"], "tiny", kind="trial")
    assert (
        sorted(t.data.params["pruner_label"] for t in trials)
        == ["infobatch"] * 2 + ["infobatch-anneal"] * 2
    )


def test_the_confirmed_answer_rests_only_on_fresh_seeds(stores):
    preset = load_preset(str(stores["preset"]))
    calls = []

    def recording(pruner, params, seed, tags):
        calls.append((seed, tags.get("prunebench.confirmation") == "true"))
        return planted(pruner, params, seed, tags)

    result = run_search(
        preset, "random", trials=6, seeds=2, tracking_uri=stores["tracking_uri"],
        storage_url=stores["storage_url"], evaluate=recording, confirm_seeds=3,
    )  # fmt: skip
    searched = {seed for seed, confirming in calls if not confirming}
    fresh = {seed for seed, confirming in calls if confirming}
    assert searched == {0, 1} and fresh == {1000, 1001, 1002}
    confirmation = result.confirmation
    assert confirmation.seeds == [1000, 1001, 1002]
    confirmed = confirmation.confirmed
    assert confirmed is not None and confirmed.searched_ratio == result.best["prune_ratio"]
    assert confirmed.verdict.n_pruned == confirmed.verdict.n_full == 3
    # 2 seeds x 6 trials, 3 fresh full-data runs, 3 fresh runs of each of the two candidates
    # (the two largest lossless ratios, smaller first: both pass, the larger is the answer).
    assert [a.looks for a in confirmation.attempts] == [1, 1]
    assert result.training_runs == 12 + 3 + 3 + 3
    (search_run,) = runs_of(stores["tracking_uri"], "tiny", kind="search")
    metrics = search_run.data.metrics
    assert metrics["confirmed_searched_ratio"] == result.best["prune_ratio"]
    assert metrics["search_training_runs"] == 21


def test_a_confirmation_does_not_wait_for_other_variants_confirmations(stores):
    # Each study takes its own turn lock: a lock on the shared folder (which every variant's
    # confirmation once took, so two search workers confirmed one variant at a time) is not it.
    preset = load_preset(str(stores["preset"]))
    shared = Path(stores["checkpoint_dir"]) / "search" / "confirm"
    shared.mkdir(parents=True)
    outcome = []

    def search():
        result = run_search(
            preset, "random", trials=2, seeds=2, tracking_uri=stores["tracking_uri"],
            storage_url=stores["storage_url"], checkpoint_dir=stores["checkpoint_dir"],
            evaluate=planted, confirm_seeds=2,
        )  # fmt: skip
        outcome.append(result)

    with exclusive_lock(shared):  # as another variant's confirmation in progress would hold it
        worker = threading.Thread(target=search, daemon=True)
        worker.start()
        worker.join(timeout=120)
        assert not worker.is_alive(), "the confirmation waited for another variant's lock"
    assert outcome and outcome[0].confirmation is not None


def test_fresh_full_data_seeds_another_worker_trains_are_passed_over_then_reused(stores):
    # Full data on a fresh seed is trained once per machine, under a lock of its own: a seed
    # another worker holds (1001 here) is passed over, the others trained, then it is waited
    # for; two workers needing the same seeds so train them side by side.
    preset = load_preset(str(stores["preset"]))
    busy = Path(stores["checkpoint_dir"]) / "search" / "full" / "1001"
    busy.mkdir(parents=True)
    full_seeds, passed_over = [], threading.Event()

    def recording(pruner, params, seed, tags):
        if pruner == "full" and tags.get("prunebench.confirmation") == "true":
            full_seeds.append(seed)
            if seed == 1002:
                passed_over.set()
        return planted(pruner, params, seed, tags)

    def search():
        run_search(
            preset, "random", trials=6, seeds=2, tracking_uri=stores["tracking_uri"],
            storage_url=stores["storage_url"], checkpoint_dir=stores["checkpoint_dir"],
            evaluate=recording, confirm_seeds=3,
        )  # fmt: skip

    with exclusive_lock(busy):  # another worker training full data on seed 1001
        worker = threading.Thread(target=search, daemon=True)
        worker.start()
        assert passed_over.wait(timeout=120), "seed 1002 waited for the lock of seed 1001"
        assert full_seeds == [1000, 1002]
    worker.join(timeout=120)
    assert not worker.is_alive()
    assert full_seeds == [1000, 1002, 1001]  # then 1001, once its lock was free


def test_the_grid_search_reuses_the_suites_cells(stores):
    # The grid's trials are the suite's own cells on the suite's seeds: nothing is retrained.
    preset = load_preset(str(stores["preset"]))
    run_suite(preset, **suite_kwargs(stores))
    before = len(runs_of(stores["tracking_uri"], "tiny"))
    result = run_search(
        preset, "orderdp", trials=99, seeds=2, tracking_uri=stores["tracking_uri"],
        storage_url=stores["storage_url"], checkpoint_dir=stores["checkpoint_dir"],
        sampler="grid", confirm_seeds=0,
    )  # fmt: skip
    assert [row["prune_ratio"] for row in result.frontier] == pytest.approx([0.5], abs=0.02)
    assert len(runs_of(stores["tracking_uri"], "tiny")) == before
    assert len(runs_of(stores["tracking_uri"], "tiny", kind="search_train")) == 0
