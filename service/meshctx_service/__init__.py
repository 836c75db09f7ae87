"""The meshctx validation service (FastAPI). It imports ``meshctx.plan`` and never torch."""
