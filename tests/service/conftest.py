"""The service tests' live server is the run's shared ``live_server`` (``tests/support/servers.py``, registered
in ``tests/conftest.py``)."""
