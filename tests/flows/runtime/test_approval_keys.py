"""Suspend keys: every node id the validator accepts (and any other string) in every loop
iteration makes a key Prefect takes, and two different (id, iteration) pairs never share one."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from prefect.client.schemas.objects import FlowRunInput
from prefect.input.run_input import keyset_from_base_key

from translator.models import NODE_ID_PATTERN
from translator.nodetypes import input_key


def suspend_key(node_id: str, path: tuple[int, ...] = ()) -> str:
    """The key an approval suspends its run with."""
    return input_key("approval", node_id, path)


PATHS = st.lists(st.integers(0, 100_000), max_size=3).map(tuple)


def _accepted_by_prefect(key: str) -> None:
    # What Prefect stores for a suspended (or, for local runs, paused) run: these keys.
    for state in ("suspended", "paused"):
        for stored in keyset_from_base_key(f"{state}-{key}").values():
            FlowRunInput(flow_run_id="00000000-0000-0000-0000-000000000000", key=stored, value="{}")


@settings(max_examples=300, deadline=None)
@given(node_id=st.from_regex(NODE_ID_PATTERN, fullmatch=True), path=PATHS)
def test_every_valid_node_id_makes_a_prefect_key(node_id: str, path: tuple[int, ...]) -> None:
    _accepted_by_prefect(suspend_key(node_id, path))


@settings(max_examples=300, deadline=None)
@given(node_id=st.text(min_size=1, max_size=70), path=PATHS)
def test_any_string_makes_a_prefect_key(node_id: str, path: tuple[int, ...]) -> None:
    _accepted_by_prefect(suspend_key(node_id, path))


def test_ids_of_letters_and_digits_keep_their_key() -> None:
    # Runs suspended before ids with '_' were handled resume under the key they stored.
    assert suspend_key("approve") == "approval-approve"
    assert suspend_key("approve2", (0, 3)) == "approval-approve2-0-3"


def test_ids_and_iterations_that_read_alike_get_different_keys() -> None:
    pairs = [
        ("a_1", ()),
        ("a-1", ()),
        ("a.1", ()),
        ("a", (1,)),
        ("a1", ()),
        ("A_1", ()),
        ("a_1", (2,)),
        ("a_1_2", ()),
        ("a", (1, 2)),
        ("a__1", ()),
        ("a_", (1,)),
        ("a", (11,)),
        ("a_1", (1,)),
        ("a_11", ()),
        ("approve_2", (0,)),
        ("approve", (2, 0)),
    ]
    keys = [suspend_key(node_id, path) for node_id, path in pairs]
    assert len(set(keys)) == len(keys), keys


@given(first=st.text(min_size=1, max_size=20), second=st.text(min_size=1, max_size=20), path_a=PATHS, path_b=PATHS)
def test_keys_are_distinct(first: str, second: str, path_a: tuple[int, ...], path_b: tuple[int, ...]) -> None:
    if (first, path_a) != (second, path_b):
        assert suspend_key(first, path_a) != suspend_key(second, path_b)
