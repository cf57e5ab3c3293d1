"""Presets validated to the leaf (issue 23, class 9): a bad value is one line at load time,
--dry-run included, never a crash later."""

from __future__ import annotations

import pytest

from prunebench.cli.main import main

PRESET = """name = "leaves"
datasets = ["synthetic"]
models = ["small_cnn"]
budget = "epochs:1"
seeds = [0]
prune_ratios = [0.5]

[[pruners]]
name = "full"

[[pruners]]
name = "infobatch"
label = "infobatch-anneal"
params = { anneal = true }
"""


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        (
            "params = { anneal = true }",
            'params = { prune_ratio = "half" }',
            "[[pruners]] #2: pruner 'infobatch' parameter 'prune_ratio' must be a number, "
            "got 'half'",
        ),
        (
            "params = { anneal = true }",
            "params = { anneal = 1 }",
            "parameter 'anneal' must be true or false, got 1",
        ),
        (
            "params = { anneal = true }",
            "params = { delta = true }",
            "parameter 'delta' must be a number, got True",
        ),
        (
            "params = { anneal = true }",
            "params = { annealing = true }",
            "pruner 'infobatch' has no parameter 'annealing'; its parameters are: prune_ratio",
        ),
        (
            'label = "infobatch-anneal"',
            "label = 5",
            "[[pruners]] #2: 'label' must be a non-empty string, got 5",
        ),
        (
            "params = { anneal = true }",
            "params = { anneal = true }\n\n[search]\nconfirm_seeds = 5\nconfirm_max_seeds = 3",
            "[search]: 'confirm_max_seeds' must be an integer >= confirm_seeds (5), got 3",
        ),
    ],
)
@pytest.mark.parametrize("dry_run", [True, False])
def test_a_bad_leaf_is_one_line_at_load(tmp_path, monkeypatch, capsys, old, new, message, dry_run):
    monkeypatch.chdir(tmp_path)
    preset = tmp_path / "leaves.toml"
    preset.write_text(PRESET.replace(old, new))
    assert main(["suite", str(preset), *(["--dry-run"] if dry_run else [])]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("prunebench: error: "), lines
    assert message in lines[0]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["leaves.toml"]  # nothing written


def test_a_preset_that_is_not_utf8_is_one_line(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    preset = tmp_path / "latin1.toml"
    preset.write_bytes(PRESET.replace("leaves", "café").encode("latin-1"))
    assert main(["suite", str(preset), "--dry-run"]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert lines == [
        f"prunebench: error: {preset}: not UTF-8 text (byte 11: invalid continuation byte); "
        "save it as UTF-8"
    ]


def test_a_good_preset_still_loads(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    preset = tmp_path / "leaves.toml"
    preset.write_text(
        PRESET.replace("anneal = true", "anneal = true, delta = 0.8, prune_ratio = 0")
    )
    assert main(["suite", str(preset), "--dry-run"]) == 0
