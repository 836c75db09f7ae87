"""``/v1/validate`` and ``/v1/layout``: the planner behind HTTP, and the wire models of a topology."""
