"""Differential tests against the real NeMo Automodel 0.7.0; helpers live in ``nemo_loader`` (a unique module
name, so they never collide with another directory's conftest)."""

import pytest

pytest.importorskip("torch")
