"""``POST /v1/place`` and ``POST /v1/topology/import``: mesh-aware placement (``meshctx.place``) behind HTTP."""
