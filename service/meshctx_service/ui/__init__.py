"""The topology viewer: static files served at ``/ui`` (``routes``)."""
