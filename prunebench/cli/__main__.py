"""``python -m prunebench.cli``: the ``prunebench`` command."""

import sys

from prunebench.cli.main import main

sys.exit(main())
