"""YAML from other systems read without the ways a few hundred bytes can cost gigabytes or a crash.

``yaml.safe_load`` expands aliases: a 500-byte document whose anchors refer to anchors builds a structure of
billions of references (and its ``repr`` in an error message, hundreds of megabytes), and one that refers to
itself makes every later walk recurse forever. ``load`` refuses any alias (``*name``) instead, and any nesting
deeper than ``MAX_DEPTH``, with a ``yaml.YAMLError`` naming the line and column; integers longer than
``LONG_DIGITS`` digits come back as ``bounded_int`` makes them (a named error, not a multi-kilobyte number).
Every reader of YAML that a client sends (SkyPilot tasks, Slurm ``topology.yaml``) can share it.
"""

from __future__ import annotations

from typing import Any

import yaml
from yaml.composer import ComposerError
from yaml.constructor import ConstructorError
from yaml.events import AliasEvent, CollectionStartEvent

from .job_sizes import LONG_DIGITS, bounded_int

#: Deepest nesting of mappings and lists accepted (real task and topology files use fewer than ten levels).
MAX_DEPTH = 64


class NoAliasLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` that refuses aliases and nesting deeper than ``MAX_DEPTH``."""

    def __init__(self, stream: str | bytes) -> None:
        super().__init__(stream)
        self._depth = 0

    def compose_node(self, parent: yaml.Node | None, index: int) -> yaml.Node | None:
        if self.check_event(AliasEvent):
            event = self.peek_event()
            raise ComposerError(
                None, None, "YAML aliases (*name) are not accepted; write the value out in full", event.start_mark
            )
        collection = self.check_event(CollectionStartEvent)
        if collection:
            self._depth += 1
            if self._depth > MAX_DEPTH:
                event = self.peek_event()
                raise ComposerError(None, None, f"nested deeper than {MAX_DEPTH} levels", event.start_mark)
        try:
            return super().compose_node(parent, index)
        finally:
            if collection:
                self._depth -= 1


def _bounded_yaml_int(loader: yaml.SafeLoader, node: yaml.Node) -> int | str:
    if not isinstance(node, yaml.ScalarNode):  # ``!!int [...]``: refused, not read as the repr of its tree
        kind = "sequence" if isinstance(node, yaml.SequenceNode) else "mapping"
        raise ConstructorError(None, None, f"expected an integer, found a {kind} tagged !!int", node.start_mark)
    text = str(node.value).replace("_", "")
    if len(text.lstrip("+-")) > LONG_DIGITS:
        return bounded_int(text)
    return loader.construct_yaml_int(node)


NoAliasLoader.add_constructor("tag:yaml.org,2002:int", _bounded_yaml_int)


def load(text: str | bytes) -> Any:
    """One YAML document, aliases and deep nesting refused (``yaml.YAMLError``)."""
    return yaml.load(text, Loader=NoAliasLoader)
