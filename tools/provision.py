"""The system packages prunebench needs, per purpose, installed where apt and root allow.

The one list of system packages: nox sessions import this module (before building the
environment, so FFCV's build libraries are there when pip builds FFCV) and .ci/run runs it as
``python3 tools/provision.py --for tests``. Standard library only: it runs before any
environment exists.

On Debian/Ubuntu as root (or with passwordless sudo), missing packages are installed with
``apt-get update`` and ``apt-get install -y --no-install-recommends``. Elsewhere the exact
command to run is printed and the caller carries on with what works (tensor loader, tests that
need a missing part skip with their reason). The probes are parameters so that every decision
can be tested without running apt.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

FFCV = ("libopencv-dev", "libturbojpeg0-dev", "pkg-config")  # FFCV 1.0.2 builds against these
DATA = ("dataset-fashion-mnist",)  # the real Fashion-MNIST, in /usr/share/datasets/fashion-mnist
SERVICES = ("postgresql", "chromium")  # multi-worker store tests; report screenshots

PURPOSES: dict[str, tuple[str, ...]] = {
    "ffcv": FFCV,
    "data": DATA,
    "run": FFCV + DATA,  # demo, suite, search, report, cifar_suite
    "tests": FFCV + DATA + SERVICES,
}


def _has_apt() -> bool:
    return shutil.which("apt-get") is not None and shutil.which("dpkg-query") is not None


def _is_root() -> bool:
    return hasattr(os, "geteuid") and os.geteuid() == 0


def _has_passwordless_sudo() -> bool:
    if shutil.which("sudo") is None:
        return False
    probe = subprocess.run(["sudo", "-n", "true"], capture_output=True, check=False)
    return probe.returncode == 0


def _installed(package: str) -> bool:
    probe = subprocess.run(
        ["dpkg-query", "-W", "-f=${Status}", package], capture_output=True, text=True, check=False
    )
    return probe.returncode == 0 and "install ok installed" in probe.stdout


def _run(command: Sequence[str], env: dict[str, str]) -> int:
    return subprocess.run(list(command), env={**os.environ, **env}, check=False).returncode


@dataclass
class Probes:
    """How the machine is asked; tests pass their own functions."""

    has_apt: Callable[[], bool] = _has_apt
    is_root: Callable[[], bool] = _is_root
    has_passwordless_sudo: Callable[[], bool] = _has_passwordless_sudo
    installed: Callable[[str], bool] = _installed
    run: Callable[[Sequence[str], dict[str, str]], int] = _run


@dataclass
class Outcome:
    """What provisioning decided and did."""

    action: str  # "present", "installed", "failed", "manual"
    missing: tuple[str, ...] = ()
    commands: list[list[str]] = field(default_factory=list)
    message: str = ""


APT_ENV = {"DEBIAN_FRONTEND": "noninteractive"}


def install_commands(packages: Sequence[str], prefix: Sequence[str] = ()) -> list[list[str]]:
    """The apt-get commands that install ``packages`` (run as root, or behind ``prefix``)."""
    return [
        [*prefix, "apt-get", "update", "-q"],
        [*prefix, "apt-get", "install", "-y", "-q", "--no-install-recommends", *packages],
    ]


def manual_command(packages: Sequence[str]) -> str:
    """The one shell line a user runs to install ``packages`` themselves."""
    names = " ".join(packages)
    return (
        "sudo apt-get update && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y "
        f"--no-install-recommends {names}"
    )


def packages_for(purposes: Sequence[str]) -> tuple[str, ...]:
    """The packages of ``purposes``, each once, in list order."""
    unknown = [p for p in purposes if p not in PURPOSES]
    if unknown:
        raise ValueError(f"unknown purpose {unknown[0]!r}; choose from {', '.join(PURPOSES)}")
    return tuple(dict.fromkeys(pkg for purpose in purposes for pkg in PURPOSES[purpose]))


def provision(
    purposes: Sequence[str], probes: Probes | None = None, say: Callable[[str], None] = print
) -> Outcome:
    """Install the missing packages of ``purposes`` if this machine allows; else say how."""
    probes = probes or Probes()
    packages = packages_for(purposes)
    if not probes.has_apt():
        outcome = Outcome(
            "manual",
            packages,
            message="no apt-get here: install the equivalents of "
            f"{' '.join(packages)} with this system's package manager (FFCV then builds; "
            "until then the tensor loader is used and tests needing them skip)",
        )
        say(f"provision: {outcome.message}")
        return outcome
    missing = tuple(pkg for pkg in packages if not probes.installed(pkg))
    if not missing:
        return Outcome("present")
    if probes.is_root():
        prefix: tuple[str, ...] = ()
    elif probes.has_passwordless_sudo():
        prefix = ("sudo", "-n", "env", "DEBIAN_FRONTEND=noninteractive")
    else:
        outcome = Outcome(
            "manual",
            missing,
            message=f"missing system packages {' '.join(missing)}; install them with: "
            f"{manual_command(missing)}  (until then the tensor loader is used and tests "
            "needing them skip)",
        )
        say(f"provision: {outcome.message}")
        return outcome
    commands = install_commands(missing, prefix)
    say(f"provision: installing {' '.join(missing)} (apt-get, about 1-2 minutes)")
    for command in commands:
        if probes.run(command, APT_ENV) != 0:
            outcome = Outcome(
                "failed",
                missing,
                commands,
                message=f"`{' '.join(command)}` failed; install {' '.join(missing)} by hand: "
                f"{manual_command(missing)}",
            )
            say(f"provision: {outcome.message}")
            return outcome
    return Outcome("installed", missing, commands)


def main(argv: Sequence[str] | None = None) -> int:
    """``python3 tools/provision.py --for tests``: exit 0 unless an install was tried and failed."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--for",
        dest="purposes",
        action="append",
        choices=sorted(PURPOSES),
        help="what the packages are for (repeatable; default: run)",
    )
    parser.add_argument("--list", action="store_true", help="print the packages and exit")
    args = parser.parse_args(argv)
    purposes = args.purposes or ["run"]
    if args.list:
        print(" ".join(packages_for(purposes)))
        return 0
    outcome = provision(purposes)
    if outcome.action == "present":
        print(f"provision: system packages for {', '.join(purposes)} are installed")
    return 1 if outcome.action == "failed" else 0


if __name__ == "__main__":
    sys.exit(main())
