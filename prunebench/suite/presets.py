"""Finding and loading a preset: a TOML path, or the name of a preset shipped with the package.

``load_preset`` reads the file, applies the command line's overrides and validates it
(``preset_toml``) into a Preset whose cells ``preset_cells`` builds.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from prunebench.errors import ConfigError
from prunebench.suite.preset_cells import Preset
from prunebench.suite.preset_overrides import apply_overrides
from prunebench.suite.preset_toml import parse_preset

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

CONFIG_DIR = Path(__file__).resolve().parent / "named_presets"
"""The named presets, shipped as package data (so they work from an installed package too)."""


def named_presets() -> list[str]:
    """The names of the presets shipped with the package, sorted."""
    return sorted(path.stem for path in CONFIG_DIR.glob("*.toml"))


def resolve_preset_path(name_or_path: str) -> Path:
    """A path to a TOML file, or the name of a named preset (with or without .toml)."""
    path = Path(name_or_path)
    if path.suffix == ".toml" and path.is_file():
        return path
    candidate = CONFIG_DIR / f"{path.stem if path.suffix == '.toml' else name_or_path}.toml"
    if candidate.is_file():
        return candidate
    known = ", ".join(named_presets()) or "none"
    raise ConfigError(
        f"no preset {name_or_path!r}: pass a TOML file or one of the named presets ({known})"
    )


def load_preset(name_or_path: str, **overrides: Any) -> Preset:
    """Read, override (``data_dir``, or see preset_overrides) and validate a preset file."""
    path = resolve_preset_path(name_or_path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"{path}: not valid TOML ({error}); fix the file") from None
    except UnicodeDecodeError as error:
        raise ConfigError(
            f"{path}: not UTF-8 text (byte {error.start}: {error.reason}); save it as UTF-8"
        ) from None
    data = apply_overrides(data, overrides)
    return parse_preset(data, str(path), path)
