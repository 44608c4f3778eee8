"""The identity eval's metrics on hand-made clusterings, and the Python Jaro-Winkler the on-create matcher uses."""

from __future__ import annotations

import pytest

from customers.similarity import jaro_winkler
from eval.identity import bcubed, exact_key_baseline, pairwise, union_clusters

TRUTH = {"a": "1", "b": "1", "c": "1", "d": "2", "e": "3"}


def test_a_perfect_clustering_scores_one_everywhere() -> None:
    assert pairwise(TRUTH, TRUTH) == bcubed(TRUTH, TRUTH) == {"precision": 1.0, "recall": 1.0, "f1": 1.0}


def test_a_split_cluster_loses_recall_and_a_merge_loses_precision() -> None:
    split = {"a": "1", "b": "1", "c": "x", "d": "2", "e": "3"}
    assert pairwise(split, TRUTH) == {"precision": 1.0, "recall": 0.3333, "f1": 0.5}
    assert bcubed(split, TRUTH)["precision"] == 1.0 and bcubed(split, TRUTH)["recall"] == pytest.approx(0.7333, 1e-3)
    merged = {**TRUTH, "e": "2"}
    assert pairwise(merged, TRUTH) == {"precision": 0.75, "recall": 1.0, "f1": 0.8571}
    assert bcubed(merged, TRUTH)["recall"] == 1.0 and bcubed(merged, TRUTH)["precision"] == 0.8


def test_union_clusters_and_the_exact_key_baseline() -> None:
    assert union_clusters("abcd", [("a", "b"), ("c", "b"), ("x", "a")]) == {"a": "a", "b": "a", "c": "a", "d": "d"}
    rows = [{"unique_id": "1", "email": "x@y.cn"}, {"unique_id": "2", "email": "X@y.cn", "phone": "5"},
            {"unique_id": "3", "phone": "5"}]
    assert exact_key_baseline(rows, ("email", "phone")) == {"1": "1", "2": "2", "3": "2"}


@pytest.mark.parametrize("a, b, expected", [("martha", "marhta", 0.9611), ("dwayne", "duane", 0.84),
                                            ("jane smith", "john smith", 0.88), ("abc", "", 0.0), ("x", "x", 1.0)])
def test_jaro_winkler_matches_the_textbook_values(a: str, b: str, expected: float) -> None:
    assert jaro_winkler(a, b) == pytest.approx(expected, abs=1e-4)
