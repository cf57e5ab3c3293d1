"""The one ``prunebench`` command: ``main`` plus one module per subcommand (run, suite, ...)."""
