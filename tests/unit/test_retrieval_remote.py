"""The index owner's wire format: filter trees survive the trip exactly, and hostile ones are refused."""

from __future__ import annotations

from typing import Any

import pytest

from crm.access import Principal
from retrieval.errors import RetrievalError
from retrieval.filters import All, AnyOf, Match, Range, permission_filter, search_filter
from retrieval.remote import condition_from_json, condition_to_json


@pytest.mark.parametrize("principal", [
    Principal(user_id=7, role="rep", team_ids=frozenset({2, 3})), Principal(user_id=8, role="manager",
                                                                            team_ids=frozenset({2})),
    Principal(user_id=9, role="support", team_ids=frozenset()), Principal(user_id=1, role="admin")])
def test_permission_and_search_filters_round_trip_unchanged(principal: Principal) -> None:
    import json
    from datetime import date

    for cond in (permission_filter(principal),
                 search_filter(principal, account_id=4, object_types=["activity", "case"], date_from=date(2026, 1, 1),
                               date_to=date(2026, 2, 1))):
        assert condition_from_json(json.loads(json.dumps(condition_to_json(cond)))) == cond


def test_empty_any_still_matches_nothing_after_the_trip() -> None:
    assert condition_from_json(condition_to_json(AnyOf(()))) == AnyOf(())
    assert condition_from_json({"range": "ts", "gte": 1.5, "lte": None}) == Range("ts", 1.5, None)


def _nested(depth: int) -> dict[str, Any]:
    node: dict[str, Any] = {"match": "team_id", "values": [1]}
    for _ in range(depth):
        node = {"all": [node]}
    return node


@pytest.mark.parametrize("hostile", [
    None, [], "team_id", {}, {"match": "team_id"}, {"match": "team_id", "values": [True]},
    {"match": "team_id", "values": [[1]]}, {"match": 3, "values": [1]}, {"range": "ts", "gte": "yesterday"},
    {"all": {"match": "a", "values": [1]}}, {"match": "a", "values": [1], "all": []}, _nested(500),
    {"any": [{"match": "a", "values": [1]}] * 20_000},
])
def test_malformed_or_oversized_filters_are_refused(hostile: Any) -> None:
    with pytest.raises(RetrievalError):
        condition_from_json(hostile)


def test_a_filter_that_nests_as_deep_as_allowed_parses() -> None:
    assert isinstance(condition_from_json(_nested(16)), All)
    assert condition_from_json({"match": "record", "values": ["contact:1", 2]}) == Match("record", ("contact:1", 2))
