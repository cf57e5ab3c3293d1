"""The schema vocabulary of a run's configuration: :func:`setting` and its value checks.

Every fact about a RunConfig field lives in its ``setting(...)``: default, help, range check,
preset type, CLI flag, and its hash and log policy. This module imports nothing heavy (no torch,
MLflow or Optuna), so the ``prunebench`` parser built from the schema answers ``--help`` fast.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Callable
from dataclasses import MISSING, Field, field
from typing import Any

from prunebench.errors import ConfigError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

HASHED = "hashed"
"""Hash policy: the field is part of the config hash (its identity)."""
NOT_HASHED = "not hashed"
"""Hash policy: left out of the hash (where things are, how many threads compute, what a
symbolic budget resolved to: a rerun with another value continues the same cell)."""
HASHED_WHEN_SET = "hashed when set"
"""Hash policy of a field added after runs were recorded: hashed only when not at its default,
so that the runs a store already holds keep their hash (and a suite does not train them
again)."""
LOGGED = "logged"
"""Log policy: an MLflow parameter of every run."""
NOT_LOGGED = "not logged"
LOGGED_WHEN_SET = "logged when set"
"""Log policy: an MLflow parameter only when not None (a suite-set field)."""


def parse_param(text: str) -> tuple[str, Any]:
    """Parse a ``KEY=VALUE`` pruner parameter; VALUE is a TOML literal (1, 0.5, true, inf, "x").

    A bare word that is not TOML (e.g. ``mode=fast``) is taken as a string.
    """
    key, sep, raw = text.partition("=")
    key, raw = key.strip(), raw.strip()
    if not sep or not key.isidentifier() or not raw:
        raise ConfigError(f"--param expects KEY=VALUE (e.g. exploration=0.5), got {text!r}")
    try:
        value = tomllib.loads(f"value = {raw}")["value"]
    except tomllib.TOMLDecodeError:
        if not raw.replace("-", "_").isidentifier():
            raise ConfigError(
                f"--param {key}: cannot read {raw!r}; use a number, true/false, inf or a word"
            ) from None
        value = raw
    if isinstance(value, (list, dict)):
        raise ConfigError(f"--param {key}: expected a single value, got {raw!r}")
    return key, value


# ---------------------------------------------------------------------------------- checks
def check_number(name: str, value: Any, low: float, high: float, high_open: bool) -> None:
    """ConfigError unless ``value`` is a number in [low, high] (or [low, high))."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or math.isnan(value):
        raise ConfigError(f"{name} must be a number, got {value!r}")
    if value < low or value > high or (high_open and value == high):
        interval = f"[{low:g}, {high:g}{')' if high_open else ']'}"
        raise ConfigError(f"{name} must be in {interval}, got {value!r}")


def check_positive_int(name: str, value: Any) -> None:
    """ConfigError unless ``value`` is an integer > 0."""
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ConfigError(f"{name} must be a positive integer, got {value!r}")


def check_count(name: str, value: Any) -> None:
    """ConfigError unless ``value`` is an integer >= 0."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ConfigError(f"{name} must be an integer >= 0, got {value!r}")


def check_positive(name: str, value: Any) -> None:
    """ConfigError unless ``value`` is a positive finite number."""
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or not math.isfinite(value)
        or value <= 0
    ):
        raise ConfigError(f"{name} must be a positive number, got {value!r}")


def check_fraction(name: str, value: Any) -> None:
    """ConfigError unless ``value`` is in [0, 1)."""
    check_number(name, value, 0.0, 1.0, high_open=True)


def check_non_negative(name: str, value: Any) -> None:
    """ConfigError unless ``value`` is a finite number >= 0."""
    check_number(name, value, 0.0, math.inf, high_open=True)


def check_bool(name: str, value: Any) -> None:
    """ConfigError unless ``value`` is true or false."""
    if not isinstance(value, bool):
        raise ConfigError(f"{name} must be true or false, got {value!r}")


def check_open_fraction(name: str, value: Any) -> None:
    """ConfigError unless ``value`` is in (0, 1)."""
    check_number(name, value, 0.0, 1.0, high_open=True)
    if value == 0:
        raise ConfigError(f"{name} must be in (0, 1), got 0")


def check_checkpoints(name: str, value: Any) -> None:
    """ConfigError unless ``value`` is a strictly increasing list of progress points in (0, 1]."""
    if not value:
        raise ConfigError(f"{name} needs at least one progress point in (0, 1]")
    for point in value:
        check_number(f"{name} point", point, 0.0, 1.0, high_open=False)
        if point == 0:
            raise ConfigError(f"{name} points must be in (0, 1], got 0")
    if list(value) != sorted(set(value)):
        raise ConfigError(f"{name} must increase strictly, got {list(value)}")


def check_targets(name: str, value: Any) -> None:
    """ConfigError unless ``value`` is a non-empty list of accuracies in (0, 1]."""
    if not value:
        raise ConfigError("accuracy_targets needs at least one target in (0, 1]")
    for target in value:
        check_number("accuracy target", target, 0.0, 1.0, high_open=False)
        if target == 0:
            raise ConfigError("accuracy targets must be in (0, 1], got 0")


# ---------------------------------------------------------------------------------- schema
def setting(
    default: Any = MISSING,
    *,
    help: str | Callable[[], str],
    label: str | None = None,
    check: Callable[[str, Any], None] | None = None,
    preset: tuple[type, ...] | None = None,
    cli: str | None = "",
    cli_default: Any = None,
    flag: str | None = None,
    log: str = LOGGED,
    log_as: Callable[[Any], Any] | None = None,
    hash: str = HASHED,
    hash_as: Callable[[Any], Any] | None = None,
) -> Any:
    """A RunConfig field and its schema facts (everything else derives from these).

    ``help``: its help text, or a function giving it (text naming a registry, read when shown);
    ``label``: its name in error messages; ``check(label, value)`` raises ConfigError when the
    value is out of range (None values are not checked); ``preset``: the TOML types a suite
    preset may set it with (None: not a shared preset key); ``cli``: the group of its
    ``prunebench run`` flag (None: no generated flag); ``cli_default``: the flag's default for
    a field the dataclass requires (a function: read when the flag is parsed); ``flag``: the
    flag's name (default: --field-name); ``log``: LOGGED, NOT_LOGGED or LOGGED_WHEN_SET as an
    MLflow parameter, ``log_as`` the logged form of its plain value; ``hash``: HASHED,
    NOT_HASHED or HASHED_WHEN_SET in the config hash, ``hash_as`` the hashed form of its plain
    value (e.g. numbers as floats, so 1 and 1.0 name the same run).
    """
    metadata = {
        "help": help,
        "label": label,
        "check": check,
        "preset": preset,
        "cli": cli,
        "cli_default": cli_default,
        "flag": flag,
        "log": log,
        "log_as": log_as,
        "hash": hash,
        "hash_as": hash_as,
    }
    if isinstance(default, (dict, list)):
        return field(default_factory=lambda: type(default)(default), metadata=metadata)
    return field(default=default, metadata=metadata)


def help_text(spec: Field) -> str:
    """A field's help text (a registry-naming text is built now, when it is shown)."""
    text = spec.metadata["help"]
    return text() if callable(text) else text


def floats(values: Any) -> list[float]:
    """A list of numbers as floats (the hashed form of a tuple setting)."""
    return [float(value) for value in values]


def number_values(params: dict[str, Any]) -> dict[str, Any]:
    """``params`` with numbers as floats (booleans kept): prune_ratio=1 and 1.0 hash alike."""
    return {
        key: float(value)
        if isinstance(value, (int, float)) and not isinstance(value, bool)
        else value
        for key, value in params.items()
    }
