"""The registries list exactly what the modules define (issue 20 item 5: register where defined).

What each module defines is read from the modules themselves (pkgutil over the packages, then each
module's own namespace or source), never from a hand-kept list, and the registries are read in a
fresh interpreter so that plugins registered by other tests do not count.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import json
import pkgutil
import subprocess
import sys

import pytest

import prunebench.bench
import prunebench.datasets
import prunebench.pruners
from prunebench.datasets.specs import DatasetSpec
from prunebench.errors import ConfigError
from prunebench.pruners.base import Pruner


def _modules(package) -> list:
    return [
        importlib.import_module(f"{package.__name__}.{info.name}")
        for info in pkgutil.iter_modules(package.__path__)
    ]


def _defined_pruners() -> dict[str, str]:
    """Pruner name -> module, for every concrete Pruner subclass a pruners module defines."""
    found = {}
    for module in _modules(prunebench.pruners):
        for _, cls in inspect.getmembers(module, inspect.isclass):
            if (
                issubclass(cls, Pruner)
                and cls.__module__ == module.__name__
                and "name" in vars(cls)
                and not inspect.isabstract(cls)
            ):
                found[cls.name] = module.__name__
    return found


def _defined_datasets() -> dict[str, str]:
    """Dataset name -> module, for every module-level DatasetSpec a datasets module defines."""
    found = {}
    for module in _modules(prunebench.datasets):
        for value in vars(module).values():
            if isinstance(value, DatasetSpec) and module.__name__ != "prunebench.datasets":
                found.setdefault(value.name, module.__name__)
    return found


def _defined_models() -> set[str]:
    """Names in every ``@register_model("name")`` decorator of the bench modules' source."""
    found = set()
    for module in _modules(prunebench.bench):
        tree = ast.parse(inspect.getsource(module))
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
                for decorator in node.decorator_list:
                    if (
                        isinstance(decorator, ast.Call)
                        and getattr(decorator.func, "id", None) == "register_model"
                    ):
                        found.add(decorator.args[0].value)
    return found


_REGISTRIES = """
import json
from prunebench.bench.models import available_models
from prunebench.datasets import available_datasets
from prunebench.pruners import available_pruners
print(json.dumps([available_pruners(), available_datasets(), available_models()]))
"""


@pytest.fixture(scope="module")
def registries() -> tuple[list[str], list[str], list[str]]:
    """(pruners, datasets, models) as a fresh ``import prunebench`` registers them."""
    out = subprocess.run(
        [sys.executable, "-c", _REGISTRIES], check=True, capture_output=True, text=True
    )
    pruners, datasets, models = json.loads(out.stdout.strip().splitlines()[-1])
    return pruners, datasets, models


def test_pruner_registry_lists_what_the_pruner_modules_define(registries):
    defined = _defined_pruners()
    assert len(defined) >= 15  # the scan found the modules (a broken scan finds none)
    assert registries[0] == sorted(defined)


def test_dataset_registry_lists_what_the_dataset_modules_define(registries):
    defined = _defined_datasets()
    assert {"cifar10", "fashion_mnist", "synthetic"} <= set(defined)
    assert registries[1] == sorted(defined)
    # Each spec sits in the module that reads its data, not in a central list.
    assert defined["cifar10"] == "prunebench.datasets.cifar"
    assert defined["fashion_mnist"] == "prunebench.datasets.fashion_mnist"


def test_model_registry_lists_what_the_bench_modules_define(registries):
    defined = _defined_models()
    assert "mlp" in defined
    assert registries[2] == sorted(defined)


def test_package_inits_are_only_import_lists():
    # A new pruner or dataset is one module plus one import line: the package __init__ registers
    # nothing itself (every register call sits beside a definition).
    for package in (prunebench.pruners, prunebench.datasets):
        source = inspect.getsource(package)
        assert "register_pruner(" not in source and "register_dataset(" not in source


@pytest.mark.parametrize(
    ("kind", "lookup"),
    [
        ("pruner", lambda: prunebench.pruners.pruner_class("nope")),
        ("dataset", lambda: prunebench.datasets.get_spec("nope")),
        ("model", lambda: prunebench.bench.models.build_model("nope", None, 0)),
    ],
)
def test_every_registry_words_an_unknown_name_alike(kind, lookup):
    with pytest.raises(ConfigError, match=rf"^unknown {kind} 'nope'; choose one of: \w"):
        lookup()
