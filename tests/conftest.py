"""Every test, and every server a test starts, keeps its registry database out of $HOME."""

from __future__ import annotations

import os
import tempfile

os.environ.setdefault("MESHCTX_DATA_DIR", tempfile.mkdtemp(prefix="meshctx-tests-"))
