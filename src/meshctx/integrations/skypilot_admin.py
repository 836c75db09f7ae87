"""The in-process SkyPilot admin policy, for ``admin_policy: meshctx.integrations.skypilot_admin.MeshctxPolicy``
in SkyPilot's config (``pip install meshctx`` where the SkyPilot API server runs; no meshctx service needed).

The only module of meshctx that imports ``sky``. It runs ``skypilot_policy.check_task``, the same checks as
the service's ``POST /v1/policy/skypilot``, on the task SkyPilot hands it: a task with ``MESHCTX_*`` envs is
refused with every reason (``UserRequestRejectedByPolicy``, which SkyPilot shows the user) or gets
``MESHCTX_WORLD_SIZE``, ``MESHCTX_DP_SIZE`` and ``MESHCTX_FINGERPRINT`` added; other tasks pass unchanged.
"""

from __future__ import annotations

import sky
from sky import exceptions

from .skypilot_policy import TaskRejected, check_task


class MeshctxPolicy(sky.AdminPolicy):
    """Checks each task's topology with the library's default limits (``Limits``)."""

    @classmethod
    def validate_and_mutate(cls, user_request: sky.UserRequest) -> sky.MutatedUserRequest:
        task = user_request.task
        try:
            added = check_task(task.to_yaml_config())
        except TaskRejected as rejected:
            raise exceptions.UserRequestRejectedByPolicy(str(rejected)) from None
        if added is not None:
            task.update_envs(added)
        return sky.MutatedUserRequest(task=task, skypilot_config=user_request.skypilot_config)
