"""The ``meshctx.io/*`` annotations that carry a job's sizes to the admission webhook."""

from __future__ import annotations

from ..plan import MeshPlan
from ..plan.model import MODEL_FIELDS
from ..plan.sizes import ANNOTATION_PREFIX, SIZE_TABLE

PREFIX = ANNOTATION_PREFIX
STRATEGY = PREFIX + "strategy"
FINGERPRINT = PREFIX + "fingerprint"
NPROC_PER_NODE = PREFIX + "nproc-per-node"
#: ``tp_size`` → ``meshctx.io/tp-size``, ``dp_replicate_size`` → ``meshctx.io/dp-replicate-size``.
SIZE_ANNOTATIONS: dict[str, str] = {f.name: f.annotation for f in SIZE_TABLE}
#: ``num_attention_heads`` → ``meshctx.io/num-attention-heads`` (optional model-shape checks).
MODEL_ANNOTATIONS: dict[str, str] = {f: PREFIX + f.replace("_", "-") for f in MODEL_FIELDS}


def plan_annotations(plan: MeshPlan, *, elastic: bool = False) -> dict[str, str]:
    """Annotations that let the webhook re-check the workload (values are strings, as Kubernetes wants)."""
    out = {STRATEGY: plan.strategy.value}
    out |= {field.annotation: str(value) for field, value in plan.sizes.launch_values(elastic=elastic)}
    if not elastic:
        out[FINGERPRINT] = plan.fingerprint()
    return out
