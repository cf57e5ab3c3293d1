"""The report built from a real MLflow store that the tests fill with a tiny synthetic suite."""

from __future__ import annotations

import argparse
import base64
import io
import re
import shutil
import socket
import sqlite3
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from chromium import chromium as _chromium
from mlflow import MlflowClient
from mlflow.entities import Metric, Param
from PIL import Image
from reports_fixtures import EXPERIMENT, fill_store

from prunebench.cli import report as report_cli
from prunebench.errors import UsageError
from prunebench.reports.build import build
from prunebench.stats import lossless_test

# Building the store and the reports takes ~30 s on the 2-core machines: label it.
pytestmark = pytest.mark.slow

REPO_ROOT = Path(__file__).resolve().parents[1]
SYNTH = ("synthetic", "small_cnn", "epochs:10")
FASHION = ("fashion_mnist", "small_cnn", "samples:2000")


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """(tracking URI, run specs, ids of the search runs) of the filled store."""
    return fill_store(tmp_path_factory.mktemp("store"))


@pytest.fixture(scope="module")
def report(store, tmp_path_factory):
    """The report of the synthetic suite (expected seeds from the runs' tags), and its run id."""
    uri, _, _ = store
    out = tmp_path_factory.mktemp("reports") / "tiny"
    path, run_id = build(EXPERIMENT, out, uri)
    return path, run_id


def _board(report) -> pd.DataFrame:
    return pd.read_csv(report[0] / "leaderboard.csv")


def _cell(frame: pd.DataFrame, section, label: str, ratio: float) -> pd.Series:
    match = (
        (frame["dataset"] == section[0])
        & (frame["model"] == section[1])
        & (frame["budget"] == section[2])
        & (frame["pruner_label"] == label)
        & np.isclose(frame["target_prune_ratio"], ratio)
    )
    assert match.sum() == 1, (label, ratio)
    return frame[match].iloc[0]


def _finished(specs, section, label, ratio):
    """The finished runs of a cell as the suite logged them (latest per seed)."""
    runs = {}
    for spec in specs:
        if (
            (spec.dataset, spec.model, spec.budget) == section
            and (spec.label or spec.pruner) == label
            and spec.ratio == ratio
            and spec.status == "FINISHED"
        ):
            runs[spec.seed] = spec.logged
    return list(runs.values())


# ---------------------------------------------------------------- outputs


def test_every_table_and_figure_is_produced(report):
    out, _ = report
    for name in ("index.html", "leaderboard.md", "leaderboard.csv"):
        assert (out / name).stat().st_size > 0
    figures = {p.name for p in (out / "figures").glob("*.png")}
    expected = {
        f"{kind}-{slug}.png"
        for kind in ("answer", "pareto", "tta", "usage", "stability", "jaccard")
        for slug in ("synthetic-small_cnn-epochs-10", "fashion_mnist-small_cnn-samples-2000")
    } | {
        "theory-convergence.png",
        "theory-surrogate-weights.png",
        "theory-sum.png",
        "theory-experiment.png",
    }
    assert figures == expected
    tables = {p.name for p in (out / "tables").glob("*.csv")}
    assert tables == {
        "failed_runs.csv",
        "pareto.csv",
        "table8_jaccard.csv",
        "table9_stability.csv",
        "table11_grad_cosine.csv",
        "usage.csv",
        "utilization.csv",
        "searches.csv",
        "lossless_grid.csv",
        "equal_time.csv",
        "answer.csv",
    }
    page = (out / "index.html").read_text()
    for heading in (
        "Leaderboard",
        "Equal time budget",
        "Failed, incomplete and missing runs",
        "Pareto frontiers",
        "Time to accuracy",
        "Per-sample usage",
        "Coreset stability at progress checkpoints (Table 8 layout)",
        "Accuracy and within-run gradient stability by phase (Table 9 layout)",
        "Gradient alignment with full data (Table 11 layout)",
        "Largest lossless prune ratio (Table 6 layout)",
        "OrderDP theory",
    ):
        assert f">{heading}" in page, heading
    # Self-contained: every figure is embedded byte for byte, nothing is linked.
    sources = re.findall(r'<img [^>]*src="([^"]+)"', page)
    assert len(sources) == len(expected)
    embedded = {base64.b64decode(s.removeprefix("data:image/png;base64,")) for s in sources}
    assert embedded == {(out / "figures" / name).read_bytes() for name in expected}
    # The only links out are run pages in the MLflow UI (--ui-url, default the `nox -s ui` one).
    ui_link = re.escape("http://127.0.0.1:5000/#/experiments/")
    assert not re.search(rf'src="(?!data:)|href="(?!#|{ui_link})', page)
    markdown = (out / "leaderboard.md").read_text()
    assert "## synthetic / small_cnn / epochs:10" in markdown
    assert "## fashion_mnist / small_cnn / samples:2000" in markdown


def test_leaderboard_equals_hand_computation(report, store):
    _, specs, _ = store
    board = _board(report)
    assert len(board) == 8  # 6 synthetic cells (ucb has only a failure) + 2 fashion cells
    for section in (SYNTH, FASHION):
        full = _finished(specs, section, "full", 0.0)
        full_acc = np.array([r["final_test_accuracy"] for r in full])
        full_hours = np.mean([r["train_device_hours"] for r in full])
        labels = board[board["dataset"] == section[0]][["pruner_label", "target_prune_ratio"]]
        for label, ratio in labels.itertuples(index=False):
            row = _cell(board, section, label, ratio)
            runs = _finished(specs, section, label, ratio)
            assert row["n_seeds"] == len(runs)
            if not runs:
                assert np.isnan(row["accuracy_mean"]) and pd.isna(row["lossless"])
                continue
            acc = np.array([r["final_test_accuracy"] for r in runs])
            hours = np.mean([r["train_device_hours"] for r in runs])
            assert row["accuracy_mean"] == pytest.approx(acc.mean(), abs=1e-12)
            if len(acc) > 1:
                assert row["accuracy_std"] == pytest.approx(acc.std(ddof=1), abs=1e-12)
            assert row["realized_prune_ratio_mean"] == pytest.approx(
                np.mean([r["realized_prune_ratio"] for r in runs]), abs=1e-12
            )
            assert row["delta_to_full"] == pytest.approx(acc.mean() - full_acc.mean(), abs=1e-12)
            assert row["tolerance"] == pytest.approx(0.001, abs=1e-12)  # the default margin
            if label == "full":  # the reference is not tested against itself
                assert pd.isna(row["lossless_verdict"]) and pd.isna(row["lossless"])
            else:
                verdict = lossless_test(acc, full_acc, margin=0.001, level=0.05)
                assert row["lossless_verdict"] == verdict.verdict
                assert bool(row["lossless"]) == (verdict.verdict == "lossless")
            assert row["train_device_hours_mean"] == pytest.approx(hours, rel=1e-12)
            assert row["saved_pct"] == pytest.approx(100 * (1 - hours / full_hours), rel=1e-9)
            for key in ("0.80", "0.90"):
                reached = [r[f"tta_seconds_{key}"] for r in runs if f"tta_seconds_{key}" in r]
                assert row[f"tta_reached_{key}"] == len(reached)
                if reached:
                    assert row[f"tta_seconds_{key}_mean"] == pytest.approx(np.mean(reached))
            assert row["tta_target"] == pytest.approx(0.80)
    # The same numbers written out by hand for the main cells.
    orderdp = _cell(board, SYNTH, "orderdp", 0.5)
    assert orderdp["accuracy_mean"] == pytest.approx(0.902)
    # Full seeds 0.90, 0.92, 0.91 are too spread for 3 seeds at -0.8 points to show
    # non-inferiority (one-sided Welch p = 0.815), nor to show a loss beyond the 0.1-point margin.
    assert orderdp["lossless_verdict"] == "undecided" and not orderdp["lossless"]
    assert orderdp["lossless_p_value"] == pytest.approx(0.815, abs=0.001)
    assert orderdp["saved_pct"] == pytest.approx(50.0)
    # random@0.5: 0.885 vs 0.91, its upper 95% bound of the difference is -0.67 points: lossy.
    assert _cell(board, SYNTH, "random", 0.5)["lossless_verdict"] == "lossy"
    assert _cell(board, SYNTH, "infobatch", 0.5)["realized_prune_ratio_mean"] == pytest.approx(0.37)
    # The superseded failure does not count; the search's nested training run (acc 0.10) is out.
    assert _cell(board, SYNTH, "orderdp", 0.7)["n_seeds"] == 3
    assert board["accuracy_mean"].min() > 0.8


def test_failed_and_missing_runs_are_shown(report):
    out, _ = report
    board = _board(report)
    failed = pd.read_csv(out / "tables" / "failed_runs.csv")
    rows = {(r.pruner_label, r.seed, r.status): r for r in failed.itertuples()}
    assert rows[("random", 2, "FAILED")].failure_reason == "diverged: train loss is nan at epoch 3"
    assert rows[("ucb", 0, "FAILED")].failure_reason == "CUDA out of memory"
    assert not rows[("random", 2, "FAILED")].superseded
    assert rows[("orderdp", 1, "FAILED")].superseded  # rerun of orderdp@0.7 seed 1 finished
    assert "interrupted" in rows[("orderdp", 1, "RUNNING")].failure_reason
    assert len(failed) == 4
    ucb = _cell(board, SYNTH, "ucb", 0.5)
    assert ucb["n_seeds"] == 0 and ucb["seeds_flag"] and "CUDA out of memory" in ucb["notes"]
    random_cell = _cell(board, SYNTH, "random", 0.5)
    assert random_cell["seeds_flag"] and "seed 2 FAILED" in random_cell["notes"]
    assert _cell(board, SYNTH, "infobatch", 0.5)["seeds_flag"]  # seed 2 never ran
    assert not _cell(board, SYNTH, "orderdp", 0.5)["seeds_flag"]
    markdown = (out / "leaderboard.md").read_text()
    assert "| 50 | ucb | — | — | — | 0/3 (!) |" in markdown
    assert "seed 2 FAILED: diverged: train loss is nan at epoch 3" in markdown
    page = (out / "index.html").read_text()
    assert re.search(r'<tr class="failed"><td class="num">50</td><td>ucb</td>', page)
    # infobatch@0.5 realized 0.37: keyed 37, flagged for its seeds and its missed ratio.
    assert re.search(r'<tr class="flag"><td class="num">37</td><td>infobatch</td>', page)


def test_pareto_sets_are_listed(report):
    fronts = pd.read_csv(report[0] / "tables" / "pareto.csv")
    synthetic = fronts[fronts["dataset"] == "synthetic"]
    for axis in ("ratio", "device_hours"):
        cells = set(
            synthetic.loc[
                synthetic["front"] == axis, ["pruner_label", "target_prune_ratio"]
            ].itertuples(index=False, name=None)
        )
        # random@0.5 (88.5%) is beaten by orderdp@0.5 (90.2%) at the same ratio and lower cost.
        assert cells == {("full", 0.0), ("infobatch", 0.5), ("orderdp", 0.5), ("orderdp", 0.7)}


def _row(frame: pd.DataFrame, label: str, ratio: float) -> pd.Series:
    match = (
        (frame["dataset"] == "synthetic")
        & (frame["pruner_label"] == label)
        & np.isclose(frame["target_prune_ratio"], ratio)
    )
    assert match.sum() == 1, (label, ratio)
    return frame[match].iloc[0]


def _steps(mean: float, std: float, n: int) -> np.ndarray:
    """n per-step values with exactly this mean and population std."""
    z = np.arange(n, dtype=float)
    return mean + std * (z - z.mean()) / z.std()


def test_table9_accuracy_over_seeds_next_to_within_run_gradient_spread(report):
    out, _ = report
    table = pd.read_csv(out / "tables" / "table9_stability.csv")
    row = _row(table, "orderdp", 0.5)
    finals = np.array([0.905, 0.895, 0.906])
    # Accuracy at epoch e is final - 0.02 * (9 - e); epochs 0-2 are the 0-30% phase.
    phase0 = finals - 0.02 * np.mean([9, 8, 7])
    assert row["n_seeds"] == 3
    assert row["0-30%_acc_mean"] == pytest.approx(phase0.mean())
    assert row["0-30%_acc_std"] == pytest.approx(phase0.std(ddof=1))
    assert row["final_acc_mean"] == pytest.approx(finals.mean())
    # Per-step norms of epoch e: mean 2 - 0.1 e + 0.05 seed + ratio, std 0.1 + 0.01 e + 0.02
    # seed, 4 + e % 2 steps. 70-100% = epochs 7-9: numpy over those steps, per seed.
    row = _row(table, "full", 0.0)
    means, spreads = [], []
    for seed in (0, 1, 2):
        steps = np.concatenate(
            [
                _steps(2 - 0.1 * e + 0.05 * seed, 0.1 + 0.01 * e + 0.02 * seed, 4 + e % 2)
                for e in (7, 8, 9)
            ]
        )
        means.append(steps.mean())
        spreads.append(steps.std(ddof=0))
    assert row["70-100%_grad_mean"] == pytest.approx(np.mean(means))
    assert row["70-100%_grad_std_mean"] == pytest.approx(np.mean(spreads))
    assert row["final_grad_std_mean"] == pytest.approx(0.1 + 0.09 + 0.02)
    page = (out / "index.html").read_text()
    assert "epochs pooled exactly by their optimizer-step counts" in page
    assert "70-100% Grad ± Std" in page


def test_table8_and_table11_at_progress_checkpoints(report):
    out, _ = report
    jaccard = pd.read_csv(out / "tables" / "table8_jaccard.csv")
    row = _row(jaccard, "orderdp", 0.7)
    assert row["n_seeds"] == 3
    for checkpoint in ("20%", "40%", "60%", "80%", "100%"):
        assert row[f"{checkpoint}_mean"] == pytest.approx(0.5 - 0.21 + 0.01)  # seeds avg 0.01
        assert row[f"{checkpoint}_std"] == pytest.approx(0.01)
    assert set(jaccard["pruner_label"]) == {"full", "orderdp", "random", "infobatch"}
    cosine = pd.read_csv(out / "tables" / "table11_grad_cosine.csv")
    synthetic = cosine[cosine["dataset"] == "synthetic"]
    cells = zip(synthetic["pruner_label"], synthetic["target_prune_ratio"], strict=True)
    assert set(cells) == {
        ("full", 0.0),
        ("orderdp", 0.5),
        ("orderdp", 0.7),
    }
    # cosine at epoch e = level - 0.01 e + 0.01 seed, measured at e = 1, 3, ..., 9.
    full = _row(cosine, "full", 0.0)
    assert full["20%_mean"] == pytest.approx(0.98 - 0.01 + 0.01)
    assert full["20%_std"] == pytest.approx(0.01)
    orderdp = _row(cosine, "orderdp", 0.5)
    assert orderdp["n_seeds"] == 3
    assert orderdp["100%_mean"] == pytest.approx(0.8 - 0.09 + 0.01)
    page = (out / "index.html").read_text()
    assert "noise floor" in page
    assert "Not measured (grad_alignment off): infobatch @ 50%, random @ 50%." in page
    markdown = (out / "leaderboard.md").read_text()
    for heading in ("## Table 8:", "## Table 9:", "## Table 11:"):
        assert heading in markdown
    assert "| orderdp | 50.0 | 3 | 0.8000 ± 0.0100 |" in markdown


def test_usage_tables(report, store):
    out, _ = report
    _, specs, _ = store
    usage = pd.read_csv(out / "tables" / "usage.csv")
    for spec_label, ratio in (("orderdp", 0.7), ("random", 0.5)):
        logged = _finished(specs, SYNTH, spec_label, ratio)
        row = usage[
            (usage["dataset"] == "synthetic")
            & (usage["pruner_label"] == spec_label)
            & np.isclose(usage["target_prune_ratio"], ratio)
        ].iloc[0]
        zeros = [r["zero_usage_samples"] for r in logged]
        assert row["zero_usage_mean"] == pytest.approx(np.mean(zeros))
        assert row["zero_usage_max"] == max(zeros)
    assert usage["zero_usage_max"].max() > 0  # the suite has never-trained samples to show


def test_lossless_ratio_tables(report):
    out, _ = report
    searches = pd.read_csv(out / "tables" / "searches.csv")
    orderdp = searches[searches["pruner"] == "orderdp"].iloc[0]
    assert orderdp["largest_lossless_ratio"] == pytest.approx(0.552)
    assert (orderdp["trials"], orderdp["lossless_trials"]) == (3, 2)
    assert "exploitation=0.64" in orderdp["best_params"]
    infobatch = searches[searches["pruner"] == "infobatch"].iloc[0]
    assert infobatch["status"] == "FAILED"
    assert infobatch["failure_reason"] == "optuna storage unreachable"
    grid = pd.read_csv(out / "tables" / "lossless_grid.csv")
    best = grid[(grid["dataset"] == "synthetic") & (grid["pruner_label"] == "orderdp")].iloc[0]
    # No orderdp cell passes the non-inferiority test against the noisy full-data seeds.
    assert pd.isna(best["largest_lossless_ratio"])
    page = (out / "index.html").read_text()
    assert '<td class="num">55.2</td>' in page


def test_report_is_logged_as_a_report_run(report, store):
    out, run_id = report
    uri = store[0]
    client = MlflowClient(tracking_uri=uri)
    run = client.get_run(run_id)
    assert run.data.tags["prunebench.kind"] == "report"
    assert run.info.status == "FINISHED"
    assert run.data.params["report.experiment"] == EXPERIMENT
    top = {a.path for a in client.list_artifacts(run_id)}
    assert {"index.html", "leaderboard.md", "leaderboard.csv", "figures", "tables"} <= top
    figures = {a.path for a in client.list_artifacts(run_id, "figures")}
    assert len(figures) == len(list((out / "figures").glob("*.png")))


PRESET = f"""
name = "{EXPERIMENT}"
datasets = ["synthetic"]
models = ["small_cnn"]
budget = "epochs:10"
seeds = [0, 1, 2]
prune_ratios = [0.5]

[[pruners]]
name = "full"

[[pruners]]
name = "orderdp"
prune_ratios = [0.5, 0.7]

[[pruners]]
name = "random"

[[pruners]]
name = "infobatch"

[[pruners]]
name = "ucb"

[[pruners]]
name = "rs2"
"""


def test_preset_cli_names_missing_seeds_and_cells(report, store, tmp_path):
    uri = store[0]
    preset = tmp_path / "tiny.toml"
    preset.write_text(PRESET)
    parser = argparse.ArgumentParser()
    report_cli.add_parser(parser.add_subparsers())
    out = tmp_path / "nested" / "report"
    argv = ["report", "--preset", str(preset), "--out", str(out), "--tracking-uri", uri]
    args = parser.parse_args([*argv, "--no-log-run"])
    assert args.execute is report_cli.execute  # how prunebench.cli.main dispatches
    assert args.execute(args) == 0
    board = pd.read_csv(out / "leaderboard.csv", keep_default_na=False)
    assert _cell(board, SYNTH, "infobatch", 0.5)["missing_seeds"] == "2"
    assert _cell(board, SYNTH, "ucb", 0.5)["missing_seeds"] == "0, 1, 2"
    # rs2 is in the preset but never ran: a row of its own, flagged, all seeds missing.
    rs2 = _cell(board, SYNTH, "rs2", 0.5)
    assert (rs2["n_seeds"], rs2["seeds_flag"], rs2["missing_seeds"]) == (0, True, "0, 1, 2")
    assert rs2["notes"].startswith("not run")
    # Fashion cells are not in this preset, but its seed list applies to them too.
    assert _cell(board, FASHION, "full", 0.0)["missing_seeds"] == "1, 2"
    # Building again replaces the previous report as a whole; the Python API gives the path.
    (out / "stale.txt").write_text("from an older report")
    assert build(EXPERIMENT, out, uri, log_run=False) == (out, None)
    assert not (out / "stale.txt").exists() and (out / "index.html").exists()
    assert sorted(p.name for p in out.parent.iterdir()) == ["report"]  # no temp dirs left
    # Earlier report runs are not training runs: the leaderboard is unchanged.
    assert len(pd.read_csv(out / "leaderboard.csv")) == len(_board(report))


# ---------------------------------------------------------------- user errors


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_user_errors_write_nothing(store, tmp_path):
    uri = store[0]
    out = tmp_path / "out"
    with pytest.raises(UsageError, match=r"No MLflow experiment named 'nope'.*tiny-suite"):
        build("nope", out, uri)
    missing = tmp_path / "missing.db"
    with pytest.raises(UsageError, match="No MLflow database"):
        build(EXPERIMENT, out, f"sqlite:///{missing}")
    assert not missing.exists()  # MLflow would have created it
    other = tmp_path / "other.db"
    with sqlite3.connect(other) as connection:
        connection.execute("CREATE TABLE trials (id INTEGER)")
    with pytest.raises(UsageError, match="not an MLflow tracking database"):
        build(EXPERIMENT, out, f"sqlite:///{other}")
    with sqlite3.connect(other) as connection:
        tables = connection.execute("SELECT name FROM sqlite_master").fetchall()
    assert tables == [("trials",)]
    start = time.monotonic()
    with pytest.raises(UsageError, match="Cannot reach the MLflow tracking server"):
        build(EXPERIMENT, out, f"http://127.0.0.1:{_free_port()}")
    with pytest.raises(UsageError, match="Cannot reach the postgresql server"):
        build(EXPERIMENT, out, f"postgresql://u:p@127.0.0.1:{_free_port()}/mlflow")
    assert time.monotonic() - start < 20  # MLflow's own retries would take minutes
    file_out = tmp_path / "a-file"
    file_out.write_text("x")
    with pytest.raises(UsageError, match="is a file"):
        build(EXPERIMENT, file_out, uri)
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "notes.txt").write_text("mine")
    with pytest.raises(UsageError, match="not a prunebench report"):
        build(EXPERIMENT, busy, uri)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a-file", "busy", "other.db"]


def test_empty_experiment_and_flag_errors(store, tmp_path):
    uri = store[0]
    client = MlflowClient(tracking_uri=uri)
    if client.get_experiment_by_name("empty") is None:
        client.create_experiment("empty", artifact_location=(tmp_path / "a").as_uri())
    with pytest.raises(UsageError, match="has no runs"):
        build("empty", tmp_path / "out", uri)
    parser = argparse.ArgumentParser()
    report_cli.add_parser(parser.add_subparsers())
    for flags in ([], ["--experiment", "x", "--preset", "y"]):
        args = parser.parse_args(["report", *flags, "--out", str(tmp_path / "out")])
        with pytest.raises(UsageError, match="exactly one of --experiment"):
            report_cli.execute(args)
    args = parser.parse_args(["report", "--experiment", "x", "--out", "o", "--min-tolerance", "2"])
    with pytest.raises(UsageError, match="--min-tolerance"):
        report_cli.execute(args)
    assert not (tmp_path / "out").exists()


# ---------------------------------------------------------------- headless Chromium


def _image_check(tmp_path: Path, page: Path) -> tuple[int, int]:
    """(images decoded, images broken) as the page's own load check recorded them."""
    dom = _chromium(tmp_path, "--virtual-time-budget=10000", "--dump-dom", page.as_uri())
    body = re.search(r"<body[^>]*>", dom).group(0)
    loaded = re.search(r'data-images-loaded="(\d+)"', body)
    broken = re.search(r'data-images-broken="(\d+)"', body)
    assert loaded and broken, f"the page's load check did not run: {body}"
    return int(loaded.group(1)), int(broken.group(1))


@pytest.mark.skipif(
    shutil.which("chromium") is None,
    reason="Debian's `chromium` is not on PATH (CI installs it; apt-get install chromium)",
)
def test_html_opens_in_headless_chromium(report, tmp_path):
    out, _ = report
    page = out / "index.html"
    images = len(list((out / "figures").glob("*.png")))
    assert _image_check(tmp_path, page) == (images, 0)
    # The check can fail: a copy with one corrupted image reports it as broken.
    html = page.read_text()
    corrupted = tmp_path / "corrupted.html"
    corrupted.write_text(
        html.replace("data:image/png;base64,iVBOR", "data:image/png;base64,AAAA", 1)
    )
    assert _image_check(tmp_path, corrupted) == (images - 1, 1)
    shot = tmp_path / "report.png"
    _chromium(tmp_path, f"--screenshot={shot}", "--window-size=1280,2000", page.as_uri())
    with Image.open(shot) as image:
        assert image.size == (1280, 2000)
        # A rendered page, not a blank one: many distinct colours (tables, figures, text).
        assert len(image.convert("RGB").getcolors(maxcolors=1 << 20) or []) > 50
    artifacts = REPO_ROOT / "test-artifacts"
    artifacts.mkdir(exist_ok=True)
    shutil.copyfile(shot, artifacts / "report.png")
    print(f"report screenshot: {shot} (copied to {artifacts / 'report.png'})")


def test_embedded_images_decode(report):
    page = (report[0] / "index.html").read_text()
    for source in re.findall(r'src="data:image/png;base64,([^"]+)"', page):
        with Image.open(io.BytesIO(base64.b64decode(source))) as image:
            image.verify()


def test_prunebench_report_command(store, tmp_path, capsys):
    from prunebench.cli.main import main

    uri = store[0]
    out = tmp_path / "cli-report"
    code = main(["report", "--experiment", "nope", "--out", str(out), "--tracking-uri", uri])
    error = capsys.readouterr().err.strip()
    assert code == 2 and error.startswith("prunebench: error: No MLflow experiment named 'nope'")
    assert "\n" not in error and not out.exists()
    argv = ["report", "--experiment", EXPERIMENT, "--out", str(out), "--tracking-uri", uri]
    assert main([*argv, "--no-log-run"]) == 0
    assert f"Report written to {out / 'index.html'}" in capsys.readouterr().out


def test_minimal_store_without_histories_or_usage(tmp_path):
    """One finished full-data run with only a final accuracy: every section still renders."""
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = MlflowClient(tracking_uri=uri)
    experiment = client.create_experiment("min", artifact_location=(tmp_path / "a").as_uri())
    run = client.create_run(experiment, tags={"prunebench.kind": "train"})
    params = {"dataset": "d", "model": "m", "pruner": "full", "target_prune_ratio": "0"}
    client.log_batch(
        run.info.run_id,
        metrics=[Metric("final_test_accuracy", 0.5, 0, 0)],
        params=[Param(k, v) for k, v in {**params, "seed": "0", "budget": "epochs:1"}.items()],
    )
    client.set_terminated(run.info.run_id, "FINISHED")
    out, _ = build("min", tmp_path / "out", uri)
    board = pd.read_csv(out / "leaderboard.csv")
    assert board[["pruner_label", "n_seeds", "accuracy_mean"]].values.tolist() == [["full", 1, 0.5]]
    page = (out / "index.html").read_text()
    assert page.count("No data for this figure.") == 4  # curves, usage, stability, Jaccard
    assert len(list((out / "figures").glob("*.png"))) == 4  # Pareto + 3 theory figures


def test_the_report_opens_with_the_answer_and_ends_with_the_method(report):
    out, _ = report
    page = (out / "index.html").read_text()
    headings = re.findall(r"<h2[^>]*>([^<]+)</h2>", page)
    assert headings[0].startswith("The answer") and headings[-1] == "Method and rules"
    assert headings.index("Leaderboard") == 1
    markdown = (out / "leaderboard.md").read_text()
    assert markdown.index("## The answer") < markdown.index("## Method and rules")
    assert "comparisons against full data are decided" in markdown
    assert "Full data's saturation was not measured" in markdown  # the fixture has no cells
    answer = pd.read_csv(out / "tables" / "answer.csv")
    assert {"lossless_lower_bound", "lossless_seeds_needed", "letters"} <= set(answer.columns)


def test_saturation_says_what_doubling_the_budget_gains():
    from prunebench.reports.sections.answer import Saturation

    base = np.array([0.8825, 0.8806, 0.8846, 0.8814, 0.8823])
    gained = Saturation("fashion_mnist", "mlp", "epochs:10", 2.0, base, base + 0.0030)
    assert gained.gain == pytest.approx(0.0030)
    assert "is saturated at epochs:10: 2x the budget gains +0.30 points" in gained.sentence()
    low, high = gained.interval()
    assert low < 0.0030 < high
    unsaturated = Saturation("fashion_mnist", "small_cnn", "epochs:20", 2.0, base, base + 0.04)
    assert "is NOT saturated" in unsaturated.sentence()
