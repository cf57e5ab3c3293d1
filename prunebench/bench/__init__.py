"""Training harness: config, models, budgets, the training loop, MLflow tracking, CLI.

Import what you need from the modules (``prunebench.bench.config``, ``prunebench.bench.train``);
this package module stays light so that ``prunebench --help`` starts fast.
"""
