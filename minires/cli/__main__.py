"""``python -m minires.cli``: the ``minires`` command."""
import sys

from . import main

sys.exit(main())
