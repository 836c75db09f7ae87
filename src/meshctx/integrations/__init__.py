"""Reading a job's topology out of another system's document (Kubernetes objects, SkyPilot tasks), torch-free.

Values there are strings or JSON numbers written by anyone, so every reader here parses strictly, caps
every integer before any arithmetic, and reports each unreadable value by the field it came from.
"""
