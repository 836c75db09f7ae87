"""Schedulers and launchers: launcher renderings (``render``), the Kubernetes admission webhook
(``kubernetes``) and the SkyPilot admin policy (``skypilot``), each one module with its routes."""
