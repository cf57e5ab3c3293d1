"""One training run: config, models, budgets, schedule, metrics, checkpoint, tracking writer,
the training loop (``trainer``) and the run lifecycle (``run``: MLflow, resume, progress).

Import what you need from the modules (``prunebench.bench.config``, ``prunebench.bench.run``);
this package module stays light so that ``prunebench --help`` starts fast.
"""
