"""The topology viewer: static ES modules under ``static/`` (served by ``routes``) and the form
vocabulary they fetch at start-up (``meta``)."""
