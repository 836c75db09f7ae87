"""One rank of a rendered torchrun launch: the meshes come from the environment only, as a training script's would."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import torch.distributed as dist

from meshctx import MeshContext

if __name__ == "__main__":
    out = Path(sys.argv[1])
    extra = sys.argv[2:]  # the training arguments after the script, passed through by torchrun untouched
    dist.init_process_group("gloo")
    try:
        ctx = MeshContext.from_env()
        report = {
            "rank": dist.get_rank(),
            "world": dist.get_world_size(),
            "fingerprint": ctx.fingerprint(),
            "tp": ctx.tp_size,
            "dp_shard": ctx.dp_shard_size,
            "tp_group": dist.get_process_group_ranks(ctx.axis_group("tp")),
            "args": extra,
            "env_fingerprint": os.environ["MESHCTX_FINGERPRINT"],
        }
        print(f"rank {report['rank']} fingerprint {report['fingerprint']}", flush=True)
        (out / f"rank{report['rank']}.json").write_text(json.dumps(report))
    finally:
        dist.destroy_process_group()
