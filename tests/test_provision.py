"""tools/provision.py's decisions, with the machine's probes replaced by recorded answers."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _load():
    # tools/ is a folder of scripts, not a package: load the module by path, as noxfile.py does.
    spec = importlib.util.spec_from_file_location(
        "prunebench_provision", ROOT / "tools/provision.py"
    )
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


provision = _load()


class Machine:
    """Answers the probes as a described machine would, and records the commands run."""

    def __init__(self, apt=True, root=True, sudo=False, installed=(), fail_on=None):
        self.apt, self.root, self.sudo = apt, root, sudo
        self.present = set(installed)
        self.fail_on = fail_on
        self.commands: list[list[str]] = []
        self.envs: list[dict[str, str]] = []

    def probes(self):
        return provision.Probes(
            has_apt=lambda: self.apt,
            is_root=lambda: self.root,
            has_passwordless_sudo=lambda: self.sudo,
            installed=lambda package: package in self.present,
            run=self._run,
        )

    def _run(self, command, env) -> int:
        self.commands.append(list(command))
        self.envs.append(dict(env))
        if self.fail_on is not None and self.fail_on in command:
            return 100
        return 0


TESTS = ["libopencv-dev", "libturbojpeg0-dev", "pkg-config", "dataset-fashion-mnist",
         "postgresql", "chromium"]  # fmt: skip


def test_one_package_list_per_purpose():
    assert list(provision.packages_for(["tests"])) == TESTS
    assert provision.packages_for(["ffcv"]) == ("libopencv-dev", "libturbojpeg0-dev", "pkg-config")
    assert provision.packages_for(["data"]) == ("dataset-fashion-mnist",)
    assert provision.packages_for(["ffcv", "data"]) == provision.packages_for(["run"])
    with pytest.raises(ValueError, match="unknown purpose 'gpu'"):
        provision.packages_for(["gpu"])


def test_root_with_apt_installs_only_the_missing_packages():
    machine = Machine(installed=["pkg-config", "postgresql"])
    said: list[str] = []
    outcome = provision.provision(["tests"], machine.probes(), say=said.append)
    missing = ["libopencv-dev", "libturbojpeg0-dev", "dataset-fashion-mnist", "chromium"]
    assert outcome.action == "installed"
    assert list(outcome.missing) == missing
    assert machine.commands == [
        ["apt-get", "update", "-q"],
        ["apt-get", "install", "-y", "-q", "--no-install-recommends", *missing],
    ]
    assert machine.envs == [{"DEBIAN_FRONTEND": "noninteractive"}] * 2
    assert said == [f"provision: installing {' '.join(missing)} (apt-get, about 1-2 minutes)"]


def test_everything_present_runs_nothing_and_says_nothing():
    machine = Machine(installed=TESTS)
    said: list[str] = []
    outcome = provision.provision(["tests"], machine.probes(), say=said.append)
    assert outcome.action == "present" and outcome.missing == ()
    assert machine.commands == [] and said == []


def test_passwordless_sudo_installs_through_sudo():
    machine = Machine(root=False, sudo=True, installed=["pkg-config"])
    outcome = provision.provision(["ffcv"], machine.probes(), say=lambda _: None)
    assert outcome.action == "installed"
    prefix = ["sudo", "-n", "env", "DEBIAN_FRONTEND=noninteractive"]
    assert machine.commands == [
        [*prefix, "apt-get", "update", "-q"],
        [*prefix, "apt-get", "install", "-y", "-q", "--no-install-recommends",
         "libopencv-dev", "libturbojpeg0-dev"],
    ]  # fmt: skip


def test_not_root_without_sudo_prints_the_exact_command_and_runs_nothing():
    machine = Machine(root=False, sudo=False, installed=["pkg-config"])
    said: list[str] = []
    outcome = provision.provision(["run"], machine.probes(), say=said.append)
    assert outcome.action == "manual"
    assert machine.commands == []
    expected = (
        "sudo apt-get update && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y "
        "--no-install-recommends libopencv-dev libturbojpeg0-dev dataset-fashion-mnist"
    )
    assert len(said) == 1 and expected in said[0]


def test_not_root_but_nothing_missing_needs_no_privileges():
    machine = Machine(root=False, sudo=False, installed=TESTS)
    assert provision.provision(["tests"], machine.probes(), say=lambda _: None).action == "present"


def test_no_apt_names_every_package_and_runs_nothing():
    machine = Machine(apt=False, root=True)
    said: list[str] = []
    outcome = provision.provision(["tests"], machine.probes(), say=said.append)
    assert outcome.action == "manual" and list(outcome.missing) == TESTS
    assert machine.commands == []
    assert len(said) == 1 and "no apt-get here" in said[0] and " ".join(TESTS) in said[0]


def test_a_failed_apt_command_stops_and_says_how_to_install_by_hand():
    machine = Machine(installed=[], fail_on="update")
    said: list[str] = []
    outcome = provision.provision(["data"], machine.probes(), say=said.append)
    assert outcome.action == "failed"
    assert machine.commands == [["apt-get", "update", "-q"]]  # install not attempted
    assert "apt-get update -q` failed" in said[-1] and "dataset-fashion-mnist" in said[-1]


def test_the_script_reports_installed_packages_on_this_machine(capsys):
    # The real probes, read-only here: --list prints the one list .ci/run and nox install from.
    assert provision.main(["--list", "--for", "tests"]) == 0
    assert capsys.readouterr().out.split() == TESTS
