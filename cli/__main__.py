"""``python -m cli``: the same as the ``snakedeck`` command."""

import sys

from cli.main import main

sys.exit(main())
