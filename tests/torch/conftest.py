"""Tests that build real torch meshes; helpers live in ``torch_worlds`` (a unique module name, so they never
collide with another directory's conftest)."""

import pytest

pytest.importorskip("torch")
