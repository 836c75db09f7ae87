"""``python -m meshctx.cli``: the same as the ``meshctx`` command."""

import sys

from . import main

sys.exit(main())
