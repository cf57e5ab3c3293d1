"""Count the stops and returns of a run config's walk through one tiny ``prunebench run``.

Runs ``prunebench run`` in this process (synthetic data, a small CNN, 2 epochs, CPU, a temporary
folder) under ``sys.setprofile`` and counts:

- stops: calls into prunebench functions that receive the run's config (a ``RunConfig``) or its
  resolved run (a ``ResolvedRun``, where the tree has one) as an argument;
- returns: how many of those calls return to their caller;
- config.py entries: calls into functions defined in ``prunebench/bench/config.py``;
- config-family entries: the same over config.py and the modules split from it where the tree
  has them (settings.py, identity.py, config_checks.py), the schema's import included.

Usage: ``PYTHONPATH=<tree> python tools/cfg_walk.py`` (prints one line of counts per measure).
"""

from __future__ import annotations

import os
import sys
import tempfile
from collections import Counter
from pathlib import Path

ARGV = [
    "run",
    "--dataset", "synthetic",
    "--model", "small_cnn",
    "--pruner", "orderdp",
    "--prune-ratio", "0.5",
    "--budget", "epochs:2",
    "--subset", "400",
    "--batch-size", "64",
    "--device", "cpu",
    "--threads", "1",
    "--system-metrics", "0",
    "--quiet",
]  # fmt: skip
WALKED = ("RunConfig", "ResolvedRun")
SPLIT_FROM_CONFIG = ("config.py", "settings.py", "identity.py", "config_checks.py")


def main() -> int:
    """Run the tiny command under the profiler and print the counts."""
    import prunebench
    from prunebench.cli.main import main as prunebench_main

    root = str(Path(prunebench.__file__).parent)
    bench = Path(root) / "bench"
    config_file = str(bench / "config.py")
    family = {str(bench / name) for name in SPLIT_FROM_CONFIG}
    counts: Counter[str] = Counter()
    sites: Counter[str] = Counter()
    walking: set[int] = set()  # ids of the frames that received the config

    def profile(frame, event, arg):
        code = frame.f_code
        if not code.co_filename.startswith(root):
            return
        if event == "call":
            if code.co_filename == config_file:
                counts["config.py entries"] += 1
            if code.co_filename in family:
                counts["config-family entries"] += 1
            names = code.co_varnames[: code.co_argcount + code.co_kwonlyargcount]
            values = [frame.f_locals.get(name) for name in names]
            if any(type(value).__name__ in WALKED for value in values):
                counts["stops"] += 1
                walking.add(id(frame))
                where = Path(code.co_filename).relative_to(root)
                sites[f"{where}:{code.co_name}"] += 1
        elif event == "return" and id(frame) in walking:
            walking.discard(id(frame))
            counts["returns"] += 1

    with tempfile.TemporaryDirectory(prefix="cfg-walk-") as folder:
        os.chdir(folder)
        sys.setprofile(profile)
        try:
            code = prunebench_main(ARGV)
        finally:
            sys.setprofile(None)
    print(f"exit code {code}")
    for name in ("stops", "returns", "config.py entries", "config-family entries"):
        print(f"{name}: {counts[name]}")
    if "-v" in sys.argv:
        for site, count in sites.most_common():
            print(f"  {count:4d}  {site}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
