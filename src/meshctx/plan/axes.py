"""Canonical mesh axis names, identical to NeMo Automodel's ``MeshAxisName``."""

from __future__ import annotations

from enum import Enum


class MeshAxisName(str, Enum):
    """Names of device-mesh dimensions; each member compares equal to its string value. ``str()`` and
    ``format()`` are the enum's own (``MeshAxisName.TP``), exactly as in NeMo; use ``.value`` for the name."""

    PP = "pp"
    DP = "dp"
    DP_REPLICATE = "dp_replicate"
    DP_SHARD = "dp_shard"
    DP_SHARD_CP = "dp_shard_cp"
    DP_CP = "dp_cp"
    CP = "cp"
    TP = "tp"
    EP = "ep"
    EP_SHARD = "ep_shard"


#: Every value accepted as a ``DeviceMesh`` dimension name.
VALID_AXIS_NAMES: frozenset[str] = frozenset(axis.value for axis in MeshAxisName)
