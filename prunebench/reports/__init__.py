"""Reports built only from MLflow: leaderboards, Pareto fronts, curves, tables, theory figures.

Entry point: ``prunebench.reports.build.build``. This package module stays light (no MLflow or
matplotlib import) so that the CLI starts fast.
"""
