"""The torch side of meshctx: realize a plan as live meshes (``realize``), hold them (``context``) and read
them back into a plan (``readback``). Nothing here is imported by ``import meshctx``; torch loads on first use."""
