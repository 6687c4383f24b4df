"""``python -m tinyformers``: the ``tinyformers`` command."""

import sys

from .cli.main import main

sys.exit(main())
