"""Hostlist expressions parse and compress like Slurm's, and round-trip."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from meshctx.place import format_hostlist, natural_key, parse_hostlist


def test_ranges_keep_their_padding_and_lists_mix_with_ranges() -> None:
    names = parse_hostlist("gpu-[001-032,040]")
    assert len(names) == 33
    assert names[:2] == ["gpu-001", "gpu-002"] and names[-2:] == ["gpu-032", "gpu-040"]


def test_several_brackets_expand_leftmost_slowest() -> None:
    assert parse_hostlist("a[1-3]-b[1-2]") == ["a1-b1", "a1-b2", "a2-b1", "a2-b2", "a3-b1", "a3-b2"]


def test_comma_lists_mix_plain_names_and_brackets() -> None:
    assert parse_hostlist("login1, n[8-10],x") == ["login1", "n8", "n9", "n10", "x"]


@pytest.mark.parametrize(
    ("expression", "needle"),
    [
        ("n[1-3", "never closed"),
        ("n1-3]", "without"),
        ("n[5-2]", "runs backwards"),
        ("n[a-b]", "not a number"),
        ("n[1,,2]", "empty item"),
        ("n[[1]]", "nested"),
        ("n[0-99999999]", "more than"),
    ],
)
def test_malformed_expressions_are_refused_with_the_reason(expression: str, needle: str) -> None:
    with pytest.raises(ValueError, match=re.escape(needle)):
        parse_hostlist(expression)


def test_compression_sorts_numbers_and_merges_runs_per_prefix() -> None:
    assert format_hostlist(["node10", "node2", "node1", "node3", "login"]) == "node[1-3,10],login"
    assert format_hostlist(["gpu-003", "gpu-001", "gpu-002", "gpu-009"]) == "gpu-[001-003,009]"
    assert format_hostlist(["n5"]) == "n5"
    assert format_hostlist(["n9", "n10", "n09"]) == "n[9,09-10]"  # 09-10 keeps width 2: n09, n10


def test_natural_order_compares_numbers_as_numbers() -> None:
    names = ["node10", "node2", "node1", "gpu-b2", "gpu-a10"]
    assert sorted(names, key=natural_key) == ["gpu-a10", "gpu-b2", "node1", "node2", "node10"]
    assert sorted(names) != sorted(names, key=natural_key)  # what c10d's string order gets wrong


names_strategy = st.lists(
    st.builds(
        lambda prefix, number, pad: f"{prefix}{number:0{pad}d}",
        st.sampled_from(["gpu-", "n", "rack1-node", "a1-b"]),
        st.integers(0, 1200),
        st.integers(1, 4),
    )
    | st.sampled_from(["login", "head-node", "x"]),
    min_size=1,
    max_size=60,
)


@given(names_strategy)
def test_parse_of_format_gives_back_the_same_names(names: list[str]) -> None:
    compressed = format_hostlist(names)
    back = parse_hostlist(compressed)
    assert sorted(back) == sorted(set(names))
