"""prunebench: a benchmark harness for dynamic data pruning."""

__version__ = "0.1.0"
