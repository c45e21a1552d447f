"""``python -m analyses.cli``: the ``interp`` command."""

import sys

from analyses.cli import main

sys.exit(main())
