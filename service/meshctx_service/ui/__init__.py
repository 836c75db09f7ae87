"""The topology viewer: static ES modules under ``static/`` and the form vocabulary they fetch at start-up."""
