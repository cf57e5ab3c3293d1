"""The suite layer on top of single runs: presets, the suite runner, the search, the work queue.

Import what you need from the modules (``prunebench.suite.presets``, ``prunebench.suite.runner``);
this package module stays light so that ``prunebench --help`` starts fast.
"""
