"""The ``meshctx.io/*`` annotations that carry a job's sizes to the admission webhook."""

from __future__ import annotations

from ..config import SIZE_FIELDS
from ..plan import MeshPlan
from ..plan.model import MODEL_FIELDS

PREFIX = "meshctx.io/"
STRATEGY = PREFIX + "strategy"
FINGERPRINT = PREFIX + "fingerprint"
NPROC_PER_NODE = PREFIX + "nproc-per-node"
#: ``tp_size`` → ``meshctx.io/tp-size``, ``dp_replicate_size`` → ``meshctx.io/dp-replicate-size``.
SIZE_ANNOTATIONS: dict[str, str] = {f: PREFIX + f.replace("_", "-") for f in SIZE_FIELDS}
#: ``num_attention_heads`` → ``meshctx.io/num-attention-heads`` (optional model-shape checks).
MODEL_ANNOTATIONS: dict[str, str] = {f: PREFIX + f.replace("_", "-") for f in MODEL_FIELDS}


def plan_annotations(plan: MeshPlan, *, elastic: bool = False) -> dict[str, str]:
    """Annotations that let the webhook re-check the workload (values are strings, as Kubernetes wants)."""
    s = plan.sizes
    out = {STRATEGY: plan.strategy.value}
    values = {"tp_size": s.tp, "pp_size": s.pp, "cp_size": s.cp, "ep_size": s.ep, "dp_replicate_size": s.dp_replicate}
    if not elastic:
        values["dp_size"] = s.dp
    out |= {SIZE_ANNOTATIONS[k]: str(v) for k, v in values.items()}
    if not elastic:
        out[FINGERPRINT] = plan.fingerprint()
    return out
