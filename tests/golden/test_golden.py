"""Every answer of the golden set (``corpus.py``) is byte-identical to the one recorded in ``digests.json``."""

from __future__ import annotations

import json

from tests.golden.corpus import DIGESTS, answers
from tests.support.servers import LiveServer


def test_every_golden_answer_is_unchanged(live_server: LiveServer) -> None:
    recorded = json.loads(DIGESTS.read_text())
    produced = answers(live_server.url)
    missing = sorted(set(recorded) - set(produced))
    added = sorted(set(produced) - set(recorded))
    changed = sorted(name for name in set(recorded) & set(produced) if recorded[name] != produced[name])
    assert not (missing or added or changed), (
        f"{len(changed)} changed {changed[:20]}, {len(missing)} missing {missing[:10]}, {len(added)} new {added[:10]}"
        " — if the change is deliberate: python -m tests.golden.corpus --write, and say why in the commit"
    )
    assert len(produced) > 1000
