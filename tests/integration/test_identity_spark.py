"""The identity model runs on Spark (local mode) by configuration alone and finds the same clusters as DuckDB."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from typing import Any

import pytest

from customers.linkage import resolve, spark_session
from customers.person_spec import COLUMNS, PERSON_SPEC, person_features
from eval.identity import FEBRL_COLUMNS, FEBRL_SPEC, read_febrl

pytestmark = [pytest.mark.integration, pytest.mark.slow,
              pytest.mark.skipif(shutil.which("java") is None, reason="Spark needs a Java runtime")]


@pytest.fixture(scope="module")
def spark() -> Iterator[Any]:
    """One small local Spark session for the module (driver 1 GB), stopped at the end."""
    pytest.importorskip("pyspark")
    session = spark_session("local[2]")
    yield session
    session.stop()


def _partition(clusters: dict[str, str]) -> set[frozenset[str]]:
    groups: dict[str, set[str]] = {}
    for rec, c in clusters.items():
        groups.setdefault(c, set()).add(rec)
    return {frozenset(g) for g in groups.values()}


def test_febrl_slice_clusters_the_same_on_spark_and_duckdb(spark: Any) -> None:
    rows = read_febrl("dataset3.csv", limit=30)  # small enough that EM passes (a job per iteration) skip
    on_duckdb = resolve(rows, FEBRL_SPEC, FEBRL_COLUMNS, engine="duckdb")
    on_spark = resolve(rows, FEBRL_SPEC, FEBRL_COLUMNS, engine="spark")
    assert _partition(on_spark.clusters) == _partition(on_duckdb.clusters)
    assert len(_partition(on_duckdb.clusters)) < len(rows)  # it did find duplicates


def test_person_model_on_spark_keeps_pinyin_duplicates_together_and_families_apart(
        spark: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    people = [("1", "王伟", "wei.wang@acme.cn", "13812345678", "上海恒源有限公司"),
              ("2", "Wei Wang", "WEI.WANG@acme.cn", None, "恒源"),
              ("3", "李娜", "wei.wang@acme.cn", "138 1234 5678", None),
              ("4", "Bob McLeod", "bob@northwind.com", None, "Northwind Inc."),
              ("5", "Robert MacLeod", "bob@northwind.com", "+1 415 555 0134", "Northwind"),
              ("6", "Jane Doe", None, "+1 415 555 0134", None)]
    rows = [{"unique_id": rid, **person_features(name=n, email=e, phone=p, company=c)} for rid, n, e, p, c in people]
    on_duckdb = resolve(rows, PERSON_SPEC, COLUMNS, engine="duckdb")
    on_spark = resolve(rows, PERSON_SPEC, COLUMNS, engine="spark")
    expected = {frozenset({"1", "2"}), frozenset({"3"}), frozenset({"4", "5"}), frozenset({"6"})}
    assert _partition(on_duckdb.clusters) == _partition(on_spark.clusters) == expected
