"""Plugins: modules that register pruners, models and datasets without editing prunebench.

A plugin is a Python module (an importable name, or a ``.py`` file) that calls
``prunebench.register_pruner``, ``register_model`` or ``register_dataset`` when imported. It is
loaded by ``--plugin MODULE_OR_FILE`` (run, suite, search, report), by a preset's
``plugins = [...]``, or, for an installed package, by the entry-point group ``prunebench.plugins``
(loaded by every command). What each plugin registered is noted, so a run records the module and
version of every plugin whose names it uses (:func:`plugin_params`).

Processes started by prunebench (suite workers, the processes of a multi-process run) load the
same plugins: :func:`load_plugins` lists every plugin loaded in ``PRUNEBENCH_PLUGINS``, which
they inherit, and they call :func:`load_inherited_plugins` first.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.metadata
import importlib.util
import os
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType

from prunebench.errors import UsageError

ENTRY_POINT_GROUP = "prunebench.plugins"
ENV_VAR = "PRUNEBENCH_PLUGINS"
"""The plugins loaded in this process (os.pathsep-separated), for the processes it starts."""
PARAM_PREFIX = "plugin."
"""A run's MLflow param ``plugin.<module>`` holds the version of each plugin it uses."""


@dataclass(frozen=True)
class Plugin:
    """A loaded plugin: where it came from, its version and the names it registered."""

    spec: str
    """What was asked for: a module name or an absolute file path."""
    module: str
    version: str
    names: dict[str, frozenset[str]] = field(default_factory=dict)
    """kind ("pruner", "model", "dataset") -> the names the plugin registered."""


_LOADED: dict[str, Plugin] = {}


def _registered() -> dict[str, set[str]]:
    from prunebench.bench.models import available_models
    from prunebench.datasets import available_datasets
    from prunebench.pruners import available_pruners

    return {
        "pruner": set(available_pruners()),
        "model": set(available_models()),
        "dataset": set(available_datasets()),
    }


def _file_digest(path: str | None) -> str | None:
    if not path or not Path(path).is_file():
        return None
    return "sha256:" + hashlib.sha256(Path(path).read_bytes()).hexdigest()[:12]


def _version(module: ModuleType, distribution: str | None = None) -> str:
    """The module's ``__version__``, its distribution's version, else a digest of its file."""
    version = getattr(module, "__version__", None)
    if version is not None:
        return str(version)
    names = [distribution] if distribution else []
    top = module.__name__.partition(".")[0]
    names += importlib.metadata.packages_distributions().get(top, [])
    for name in names:
        try:
            return importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return _file_digest(getattr(module, "__file__", None)) or "unknown"


def _import_file(path: Path) -> ModuleType:
    """Import a plugin file as a module named after it (its classes pickle by that name)."""
    name = "".join(c if c.isalnum() else "_" for c in path.stem)
    if name in sys.modules or not name.isidentifier():
        name = f"prunebench_plugin_{hashlib.sha256(str(path).encode()).hexdigest()[:8]}_{name}"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"{path} is not a Python file")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # so that pickling and dataclasses find the module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[name]
        raise
    return module


def _load_error(what: str, error: Exception) -> UsageError:
    first = str(error).strip().splitlines()[0] if str(error).strip() else ""
    return UsageError(
        f"plugin {what} cannot be loaded ({type(error).__name__}: {first}); fix it or drop it "
        "from --plugin / the preset's plugins"
    )


def _load(key: str, what: str, importer: Callable[[], tuple[ModuleType, str | None]]) -> Plugin:
    """Import a plugin once, noting what it registered; UsageError (one line) if it fails."""
    if key in _LOADED:
        return _LOADED[key]
    before = _registered()
    try:
        module, distribution = importer()
    except ValueError as error:
        if "registered twice" not in str(error):
            raise _load_error(what, error) from None
        raise UsageError(f"plugin {what}: {error}; rename it or drop one of the plugins") from None
    except Exception as error:
        raise _load_error(what, error) from None
    after = _registered()
    names = {kind: frozenset(after[kind] - before[kind]) for kind in after}
    plugin = Plugin(key, module.__name__, _version(module, distribution), names)
    _LOADED[key] = plugin
    inherited = [entry for entry in os.environ.get(ENV_VAR, "").split(os.pathsep) if entry]
    if key not in inherited and not key.startswith("entry-point:"):
        os.environ[ENV_VAR] = os.pathsep.join([*inherited, key])
    return plugin


def load_plugin(spec: str, base: Path | None = None) -> Plugin:
    """Load one plugin: a ``.py`` file (relative to ``base``, default the working directory) or
    an importable module name."""
    text = str(spec).strip()
    if text.endswith(".py") or os.sep in text or "/" in text:
        path = Path(text).expanduser()
        if not path.is_absolute():
            path = (base or Path.cwd()) / path
        path = path.resolve()
        if str(path) in _LOADED:
            return _LOADED[str(path)]
        if not path.is_file():
            raise UsageError(f"plugin {text}: no such file {path}; check the path")
        return _load(str(path), text, lambda: (_import_file(path), None))
    return _load(text, text, lambda: (importlib.import_module(text), None))


def load_plugins(specs: Iterable[str], base: Path | None = None) -> list[Plugin]:
    """Load each plugin (see :func:`load_plugin`); returns them in order."""
    return [load_plugin(spec, base) for spec in specs]


def load_entry_point_plugins() -> list[Plugin]:
    """Load the installed packages' plugins (entry-point group ``prunebench.plugins``)."""
    plugins = []
    for entry in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        distribution = entry.dist.name if entry.dist is not None else None

        def importer(entry=entry, distribution=distribution):
            loaded = entry.load()
            module = loaded if isinstance(loaded, ModuleType) else sys.modules[entry.module]
            return module, distribution

        plugins.append(_load(f"entry-point:{entry.value}", entry.value, importer))
    return plugins


def load_inherited_plugins() -> list[Plugin]:
    """The entry points' plugins and those the parent process loaded (``PRUNEBENCH_PLUGINS``)."""
    inherited = [entry for entry in os.environ.get(ENV_VAR, "").split(os.pathsep) if entry]
    return load_entry_point_plugins() + load_plugins(inherited)


def loaded_plugins() -> list[Plugin]:
    """Every plugin loaded in this process, in load order."""
    return list(_LOADED.values())


def plugin_params(dataset: str, model: str, pruner: str) -> dict[str, str]:
    """``plugin.<module>`` -> version for each loaded plugin that registered one of the names."""
    used = {"dataset": dataset, "model": model, "pruner": pruner}
    return {
        f"{PARAM_PREFIX}{plugin.module}": plugin.version
        for plugin in _LOADED.values()
        if any(name in plugin.names.get(kind, ()) for kind, name in used.items())
    }


__all__ = [
    "ENTRY_POINT_GROUP",
    "Plugin",
    "load_entry_point_plugins",
    "load_inherited_plugins",
    "load_plugin",
    "load_plugins",
    "loaded_plugins",
    "plugin_params",
]
