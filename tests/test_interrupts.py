"""One signal path: SIGINT and SIGTERM at named points (the PRUNEBENCH_SIGNAL_AT test hook).

Each test sends its signals from inside the command, at a named point of its life, so the timing
is exact (no sleeps): the commands run in this process through ``main``, whose handlers are in
place from its first line and are put back when it returns.
"""

from __future__ import annotations

import gc
import os
import signal
import sys
import weakref

import pytest
from mlflow import MlflowClient

from prunebench import interrupts
from prunebench.cli.main import main

pytestmark = pytest.mark.usefixtures("one_thread")

RUN = [
    "run", "--dataset", "synthetic", "--model", "small_cnn", "--budget", "epochs:2",
    "--subset", "100", "--batch-size", "50", "--device", "cpu", "--threads", "1", "--quiet",
]  # fmt: skip


def _runs(tracking_uri: str) -> list:
    client = MlflowClient(tracking_uri)
    found = client.get_experiment_by_name("prunebench")
    return [] if found is None else client.search_runs([found.experiment_id])


def _run(tmp_path, tracking_uri: str, monkeypatch, capsys, at: str, *extra: str):
    monkeypatch.setenv(interrupts.TEST_HOOK_VARIABLE, at)
    argv = [*RUN, "--tracking-uri", tracking_uri, "--checkpoint-dir", str(tmp_path / "ck")]
    code = main([*argv, *extra])
    monkeypatch.delenv(interrupts.TEST_HOOK_VARIABLE)
    return code, capsys.readouterr().err.strip().splitlines()


def test_the_first_signal_raises_later_ones_are_noted():
    with interrupts.handling():
        with pytest.raises(interrupts.Interrupted) as raised:
            signal.raise_signal(signal.SIGTERM)
        assert raised.value.exit_code == 143
        signal.raise_signal(signal.SIGINT)  # noted: the first is being handled
        assert interrupts.received() == signal.SIGTERM


def test_a_shielded_signal_takes_effect_at_the_next_safe_point():
    with interrupts.handling():
        with interrupts.shielded():
            signal.raise_signal(signal.SIGINT)  # noted, not raised
        with pytest.raises(interrupts.Interrupted):
            interrupts.check()
        interrupts.acknowledge()
        interrupts.check()  # taken effect: no second raise


def test_a_signal_python_discarded_is_raised_at_the_next_safe_point():
    """A raise in a weakref callback during gc is dropped by Python, with 'Exception ignored'
    lines (class 4): no lines, and the stop takes effect at the next safe point."""

    class Thing:
        pass

    seen: list = []
    sys.unraisablehook, before = seen.append, sys.unraisablehook
    try:
        with interrupts.handling():
            thing = Thing()
            reference = weakref.ref(thing, lambda _: signal.raise_signal(signal.SIGINT))
            del thing
            gc.collect()  # the callback's Interrupted is discarded by Python
            assert reference() is None and interrupts.received() == signal.SIGINT
            with pytest.raises(interrupts.Interrupted):
                interrupts.check()
        assert seen == []
    finally:
        sys.unraisablehook = before


def test_sigint_during_parser_building_is_one_line(tmp_path, monkeypatch, mlflow_sqlite, capsys):
    """Class 12: a Ctrl-C in the first seconds (was a 52-89 line traceback)."""
    code, err = _run(tmp_path, mlflow_sqlite, monkeypatch, capsys, "main=SIGINT")
    assert code == 130
    assert err == ["prunebench: interrupted by SIGINT; nothing was started; run the command again"]
    assert _runs(mlflow_sqlite) == []


def test_two_sigints_while_closing_leave_the_run_killed(
    tmp_path, monkeypatch, mlflow_sqlite, capsys
):
    """Class 3: the second SIGINT lands while the record closes (was: RUNNING forever)."""
    code, err = _run(
        tmp_path, mlflow_sqlite, monkeypatch, capsys, "epoch-end=SIGINT,closing=SIGINT"
    )
    assert code == 130
    assert len(err) == 1 and err[0].startswith("prunebench: interrupted by SIGINT; ")
    assert "--resume" in err[0]
    (run,) = _runs(mlflow_sqlite)
    assert run.info.status == "KILLED"
    assert run.info.end_time is not None
    assert run.data.tags["prunebench.failure_reason"] == "interrupted by SIGINT"
    # and it resumes to the end
    code, _ = _run(tmp_path, mlflow_sqlite, monkeypatch, capsys, "", "--resume")
    assert code == 0
    (run,) = _runs(mlflow_sqlite)
    assert run.info.status == "FINISHED"
    assert "prunebench.failure_reason" not in run.data.tags


def test_sigterm_ends_a_run_killed_with_143(tmp_path, monkeypatch, mlflow_sqlite, capsys):
    """Class 6: SIGTERM (and `timeout`) was exit 143, no line, the run RUNNING forever."""
    code, err = _run(tmp_path, mlflow_sqlite, monkeypatch, capsys, "run-started=SIGTERM")
    assert code == 143
    assert len(err) == 1 and err[0].startswith("prunebench: interrupted by SIGTERM; ")
    (run,) = _runs(mlflow_sqlite)
    assert (run.info.status, run.data.tags["prunebench.failure_reason"]) == (
        "KILLED",
        "interrupted by SIGTERM",
    )


@pytest.mark.parametrize("name", ["SIGINT", "SIGTERM"])
def test_a_signal_after_training_finishes_the_record_then_exits(
    tmp_path, monkeypatch, mlflow_sqlite, capsys, name
):
    """Class 4: a Ctrl-C during the final logging was ignored (exit 0 and 6 lines of
    'Exception ignored'); now the record closes FINISHED and the exit says so in one line."""
    code, err = _run(tmp_path, mlflow_sqlite, monkeypatch, capsys, f"training-done={name}")
    assert code == 128 + signal.Signals[name]
    (run,) = _runs(mlflow_sqlite)
    assert run.info.status == "FINISHED"
    assert "final_test_accuracy" in run.data.metrics
    assert err == [
        f"prunebench: run {run.info.run_id} finished before the {name} took effect; its record "
        "is complete, nothing to continue"
    ]


def _preset(path, name: str, budget: str) -> str:
    path.write_text(
        f'name = "{name}"\ndatasets = ["synthetic"]\nmodels = ["small_cnn"]\n'
        f'budget = "{budget}"\nseeds = [0, 1]\nprune_ratios = [0.5]\nbatch_size = 50\n'
        "subset = 200\nlr = 0.05\naccuracy_targets = [0.3]\nnum_threads = 1\n"
        '[[pruners]]\nname = "full"\n'
    )
    return str(path)


def _suite(tmp_path, preset: str, tracking_uri: str, *extra: str) -> list[str]:
    return [
        "suite", preset, "--tracking-uri", tracking_uri,
        "--storage", f"sqlite:///{tmp_path / 'optuna.db'}", "--checkpoint-dir",
        str(tmp_path / "ck"), "--quiet", "--system-metrics", "0", *extra,
    ]  # fmt: skip


def _train_runs(tracking_uri: str, experiment: str) -> list:
    client = MlflowClient(tracking_uri)
    found = client.get_experiment_by_name(experiment)
    if found is None:
        return []
    return client.search_runs([found.experiment_id], "tags.`prunebench.kind` = 'train'")


def test_an_interrupted_suite_says_to_rerun_the_suite(tmp_path, monkeypatch, mlflow_sqlite, capsys):
    """Class 11: the line said "rerun with --resume", which `suite` does not accept."""
    monkeypatch.chdir(tmp_path)
    argv = _suite(tmp_path, _preset(tmp_path / "p.toml", "hint", "epochs:2"), mlflow_sqlite)
    monkeypatch.setenv(interrupts.TEST_HOOK_VARIABLE, "epoch-end=SIGINT")
    assert main(argv) == 130
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("prunebench: interrupted by SIGINT; ")
    assert "rerun the same suite command" in err[-1] and "--resume" not in err[-1]
    (killed,) = _train_runs(mlflow_sqlite, "hint")
    assert killed.info.status == "KILLED"
    monkeypatch.delenv(interrupts.TEST_HOOK_VARIABLE)
    assert main(argv) == 0  # the rerun the line names: the killed cell resumes, the other runs
    runs = _train_runs(mlflow_sqlite, "hint")
    assert sorted(run.info.status for run in runs) == ["FINISHED", "FINISHED"]
    assert killed.info.run_id in {run.info.run_id for run in runs}  # resumed, not started over


def test_stopping_the_suite_parent_stops_its_workers(tmp_path, monkeypatch, mlflow_sqlite, capfd):
    """Class 5: SIGTERM to the parent of `suite --workers 2` only (was: workers ran on as
    orphans). The parent forwards it, the workers close their runs KILLED and requeue their
    cells, and no process is left. The spawned workers log no Optuna INFO lines either."""
    import multiprocessing
    import os
    import threading
    import time

    from optuna.trial import TrialState

    from prunebench.suite.presets import load_preset
    from prunebench.suite.runner import queue_name
    from prunebench.suite.stopping import STOP_WAIT_SECONDS
    from prunebench.suite.workqueue import CellQueue, open_storage

    monkeypatch.chdir(tmp_path)
    preset = _preset(tmp_path / "p.toml", "stop", "epochs:200")
    argv = _suite(tmp_path, preset, mlflow_sqlite, "--workers", "2")
    sent = []

    def signal_the_parent_when_a_worker_trains() -> None:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:  # both workers have a run and one has a checkpoint
            if len(_train_runs(mlflow_sqlite, "stop")) == 2 and list(tmp_path.glob("ck/*.pt")):
                sent.append(time.monotonic())
                os.kill(os.getpid(), signal.SIGTERM)  # this process is the suite's parent
                return
            time.sleep(0.2)

    watcher = threading.Thread(target=signal_the_parent_when_a_worker_trains, daemon=True)
    watcher.start()
    code = main(argv)
    watcher.join()
    assert sent, "the workers never started training"
    assert code == 143
    assert time.monotonic() - sent[0] < STOP_WAIT_SECONDS  # they stopped, not killed at the end
    assert multiprocessing.active_children() == []
    err = capfd.readouterr().err.strip().splitlines()
    assert err[-1].startswith("prunebench: interrupted by SIGTERM; ")
    assert not [line for line in err if "A new study created" in line or "[I " in line], err
    runs = _train_runs(mlflow_sqlite, "stop")
    assert [run.info.status for run in runs] == ["KILLED", "KILLED"]
    storage = open_storage(f"sqlite:///{tmp_path / 'optuna.db'}")
    cells = [cfg.config_hash() for cfg in load_preset(preset).cells()]
    queue = CellQueue.open(storage, queue_name(load_preset(preset)), cells)
    trials = queue.study.get_trials(deepcopy=False)
    assert not [t for t in trials if t.state == TrialState.RUNNING]
    waiting = {t.user_attrs["cell"] for t in trials if t.state == TrialState.WAITING}
    assert waiting == set(cells)  # both cells requeued


SWEEP_SEED = 23
SWEEP_RUNS = 20
SWEEP_CONFIGS = 4
"""Seeds of the sweep's runs: each config is started, interrupted and resumed several times."""


@pytest.mark.slow
def test_a_signal_timing_sweep_leaves_the_store_usable_and_no_run_running(
    tmp_path, monkeypatch, capsys
):
    """20 runs on a new store (created by the first), each sent SIGINT, two SIGINTs 2 ms apart
    (what `timeout` relays of a Ctrl-C) or SIGTERM at a seeded random time across its life:
    store creation, setup, training, final logging, closing. After each, the next run uses the
    store, no run is left RUNNING, and the exit code matches the recorded status."""
    import random
    import threading
    import time

    from prunebench.bench.config import RunConfig

    monkeypatch.chdir(tmp_path)
    tracking_uri = f"sqlite:///{tmp_path / 'mlflow.db'}"  # new: the first run creates it
    rng = random.Random(SWEEP_SEED)
    argv = [*RUN, "--tracking-uri", tracking_uri, "--checkpoint-dir", str(tmp_path / "ck")]
    argv[argv.index("epochs:2")] = "epochs:3"
    life = 10.0  # seconds, updated from the runs that end on their own
    counts = {"signals": 0, "runs": 0, "usable": 0, "running_left": 0}
    outcomes = []
    # Signals that arrive after a command returned go to this no-op, not to pytest.
    ignore = {number: signal.signal(number, lambda *_: None) for number in interrupts.SIGNALS}
    try:
        for index in range(SWEEP_RUNS):
            seed = index % SWEEP_CONFIGS
            kind = rng.choice(["SIGINT", "SIGINT*2", "SIGTERM"])
            delay = rng.uniform(0.0, life)
            timer = threading.Timer(delay, _send, (kind,))
            start = time.monotonic()
            timer.start()
            code = main([*argv, "--seed", str(seed), "--resume"])
            elapsed = time.monotonic() - start
            timer.cancel()
            timer.join()
            counts["signals"] += 2 if kind == "SIGINT*2" else 1
            counts["runs"] += 1
            err = capsys.readouterr().err.strip().splitlines()
            config_hash = _config_hash(RunConfig, argv, seed)
            statuses = _statuses(tracking_uri, config_hash)
            outcomes.append((index, kind, round(delay, 2), code, statuses))
            assert code in (0, 130, 143), (outcomes, err)
            assert "RUNNING" not in [s for runs in _all_statuses(tracking_uri) for s in runs]
            if code == 0:
                assert statuses[-1] == "FINISHED", outcomes
                life = max(life, elapsed) if index == 0 else 0.5 * life + 0.5 * elapsed * 1.2
            else:
                assert len(err) == 1 and err[0].startswith("prunebench: "), (outcomes, err)
                signal_name = "SIGTERM" if code == 143 else "SIGINT"
                assert signal_name in err[0]
                if statuses and statuses[-1] == "FINISHED":
                    assert (
                        "finished before" in err[0]
                        or "nothing to resume" in err[0]
                        or ("interrupted by" in err[0])
                    )
                elif statuses:
                    assert statuses[-1] == "KILLED", outcomes
            counts["usable"] += 1
        # Every config once more, uninterrupted: each resumes (or is already done) and finishes.
        for seed in range(SWEEP_CONFIGS):
            assert main([*argv, "--seed", str(seed), "--resume"]) == 0
            assert _statuses(tracking_uri, _config_hash(RunConfig, argv, seed))[-1] == "FINISHED"
    finally:
        for number, handler in ignore.items():
            signal.signal(number, handler)
    counts["running_left"] = sum(
        status == "RUNNING" for runs in _all_statuses(tracking_uri) for status in runs
    )
    print(f"sweep seed {SWEEP_SEED}: {counts}; outcomes {outcomes}")
    assert counts == {"signals": counts["signals"], "runs": 20, "usable": 20, "running_left": 0}


def _send(kind: str) -> None:
    import os
    import time

    name, _, times = kind.partition("*")
    for repeat in range(int(times or 1)):
        if repeat:
            time.sleep(0.002)
        os.kill(os.getpid(), signal.Signals[name])


def _config_hash(run_config, argv: list[str], seed: int) -> str:
    from prunebench.cli.main import build_parser
    from prunebench.cli.run import config_from_args

    args = build_parser().parse_args([*argv, "--seed", str(seed)])
    return config_from_args(args).config_hash()


def _all_statuses(tracking_uri: str) -> list[list[str]]:
    return [[run.info.status] for run in _runs(tracking_uri)]


def _statuses(tracking_uri: str, config_hash: str) -> list[str]:
    """The statuses of a config's runs, oldest first."""
    runs = [
        r for r in _runs(tracking_uri) if r.data.tags.get("prunebench.config_hash") == config_hash
    ]
    return [run.info.status for run in sorted(runs, key=lambda run: run.info.start_time)]


SUITE_SWEEP_RUNS = int(os.environ.get("PRUNEBENCH_SUITE_SWEEP_RUNS", "6"))
"""The suite sweep's size: each `suite --workers 2` spawns two interpreters (~20 s here), so the
test suite runs 6; the full sweep of 20 is `PRUNEBENCH_SUITE_SWEEP_RUNS=20 pytest -s -k
two_worker_suite tests/test_interrupts.py` (an even number: each preset is signalled twice)."""


@pytest.mark.slow
def test_a_signal_timing_sweep_on_a_two_worker_suite_leaves_no_process(
    tmp_path, monkeypatch, mlflow_sqlite
):
    """`suite --workers 2`, only its parent signalled (SIGINT, two SIGINTs 2 ms apart, or
    SIGTERM) at seeded random times: after each, no process is left, no run is RUNNING, and every
    cell is FINISHED or waiting in the queue; a final uninterrupted rerun finishes them all."""
    import multiprocessing
    import random
    import threading

    from prunebench.suite.presets import load_preset
    from prunebench.suite.runner import queue_name
    from prunebench.suite.workqueue import held_cells, open_storage

    monkeypatch.chdir(tmp_path)
    # A new preset every two runs: the second signalled run continues the first's cells.
    presets = [
        _preset(tmp_path / f"p{i}.toml", f"sweep{i}", "epochs:30")
        for i in range(SUITE_SWEEP_RUNS // 2)
    ]
    rng = random.Random(SWEEP_SEED)
    outcomes = []
    ignore = {number: signal.signal(number, lambda *_: None) for number in interrupts.SIGNALS}
    try:
        for index in range(SUITE_SWEEP_RUNS):
            preset = presets[index // 2]
            argv = _suite(tmp_path, preset, mlflow_sqlite, "--workers", "2")
            kind = rng.choice(["SIGINT", "SIGINT*2", "SIGTERM"])
            delay = rng.uniform(0.0, 30.0)  # seconds: spawning, claiming, training, closing
            timer = threading.Timer(delay, _send, (kind,))
            timer.start()
            code = main(argv)
            timer.cancel()
            timer.join()
            name = f"sweep{index // 2}"
            statuses = [run.info.status for run in _train_runs(mlflow_sqlite, name)]
            outcomes.append((index, kind, round(delay, 1), code, statuses))
            assert code in (0, 130, 143), outcomes
            assert multiprocessing.active_children() == [], outcomes
            assert "RUNNING" not in statuses, outcomes
            storage = open_storage(f"sqlite:///{tmp_path / 'optuna.db'}")
            assert held_cells(storage, queue_name(load_preset(preset))) == {}, outcomes
        for i, preset in enumerate(presets):  # one worker, uninterrupted: every cell finishes
            assert main(_suite(tmp_path, preset, mlflow_sqlite)) == 0
            runs = _train_runs(mlflow_sqlite, f"sweep{i}")
            done = {
                r.data.tags["prunebench.config_hash"] for r in runs if r.info.status == "FINISHED"
            }
            assert done == {cfg.config_hash() for cfg in load_preset(preset).cells()}
            assert not [run for run in runs if run.info.status == "RUNNING"]
    finally:
        for number, handler in ignore.items():
            signal.signal(number, handler)
    print(f"suite sweep seed {SWEEP_SEED}: {outcomes}")


def test_an_interrupted_search_leaves_no_run_running(tmp_path, monkeypatch, mlflow_sqlite, capsys):
    """A signal during a search trial: the trial's run KILLED, one line naming the rerun."""
    monkeypatch.chdir(tmp_path)
    preset = _preset(tmp_path / "p.toml", "search", "epochs:1")
    with open(preset, "a") as text:
        text.write('\n[[pruners]]\nname = "random"\n')
    argv = [
        "search", preset, "--pruner", "random", "--trials", "2", "--seeds", "1",
        "--tracking-uri", mlflow_sqlite, "--storage", f"sqlite:///{tmp_path / 'optuna.db'}",
        "--checkpoint-dir", str(tmp_path / "ck"),
    ]  # fmt: skip
    monkeypatch.setenv(interrupts.TEST_HOOK_VARIABLE, "search-trial=SIGTERM")
    assert main(argv) == 143
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("prunebench: interrupted by SIGTERM; "), err
    assert "rerun the same search command" in err[0]
    client = MlflowClient(mlflow_sqlite)
    experiment = client.get_experiment_by_name("search").experiment_id
    runs = client.search_runs([experiment])
    kinds = {(r.data.tags["prunebench.kind"], r.info.status) for r in runs}
    assert ("trial", "KILLED") in kinds and ("train", "FINISHED") in kinds  # the reference
    assert not [r for r in runs if r.info.status == "RUNNING" and r.data.tags[
        "prunebench.kind"] != "search"]  # fmt: skip
