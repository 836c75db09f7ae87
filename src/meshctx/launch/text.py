"""YAML text for rendered documents; block style, keys in the order they were built."""

from __future__ import annotations

import json


def yaml_text(doc: object) -> str:
    """PyYAML when installed (the ``service`` extra), else JSON, which is valid YAML too."""
    try:
        import yaml
    except ImportError:  # pragma: no cover - the library itself has no dependencies
        return json.dumps(doc, indent=2) + "\n"

    class Dumper(yaml.SafeDumper):
        pass

    def block_strings(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
        style = "|" if "\n" in value else None
        return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)

    Dumper.add_representer(str, block_strings)
    return str(yaml.dump(doc, Dumper=Dumper, sort_keys=False, default_flow_style=False, width=1000))
