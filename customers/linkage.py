"""The Splink linkage pipeline behind every resolve: train (u by random sampling, m by EM), predict, cluster.

A ``ModelSpec`` names the comparisons and blocking rules; the same spec runs on DuckDB (default) or on Spark
(``CRMIND_IDENTITY_ENGINE=spark``) with no other change, because Splink renders its SQL per engine. Comparison
levels carry the words a link's reasons are made of ("email agrees (normalised)"), never values.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from customers.errors import IdentityError

Row = dict[str, Any]
MIN_EM_PAIRS = 200
# Below this many records random sampling sees too few pairs to estimate u (a 5-row file has 10 pairs, its
# duplicates among them), so the spec's design-time u values stand.
MIN_U_SAMPLE_RECORDS = 500
# Splink logs every SQL step at INFO and warns about levels a dataset never shows (a WeChat id two records
# share); a resolve is one summary line for the person who runs it.
logging.getLogger("splink").setLevel(logging.ERROR)


@dataclass(frozen=True)
class Level:
    """One comparison level: its reason words, its SQL condition, and the same condition in Python.

    Attributes:
        label: what agreeing at this level means, in words ("phone agrees"); stored as a link's reason.
        sql: a Splink condition over ``<column>_l`` and ``<column>_r``; ``{jw}`` stands for the engine's Jaro-Winkler
            function (DuckDB's ``jaro_winkler_similarity``, Splink's ``jaro_winkler`` UDF on Spark).
        test: the condition in Python over two feature rows (the on-create matcher scores with it).
        m: starting m probability (EM refines it; it stays when a small dataset leaves nothing to learn from).
        u: design-time u probability, used as it is when a dataset is too small to sample u from.
    """

    label: str
    sql: str
    test: Callable[[Row, Row], bool] | None = None
    m: float = 0.5
    u: float | None = None


@dataclass(frozen=True)
class Comparison:
    """A field compared level by level, most specific first; null and "else" levels are added around them."""

    name: str
    column: str  # a NULL here on either side is the null level
    levels: tuple[Level, ...]
    else_label: str
    else_m: float = 0.05


@dataclass(frozen=True)
class ModelSpec:
    """Everything that defines a model besides its trained parameters."""

    comparisons: tuple[Comparison, ...]
    blocking: tuple[tuple[str, ...], ...]  # predictions: pairs equal on all columns of any one rule
    em_blocks: tuple[tuple[str, ...], ...]  # EM passes, each blind to the comparisons on its columns
    deterministic: tuple[str, ...]  # SQL rules that surely match, to estimate the prior
    recall: float = 0.8
    guard: str = "1 = 1"  # SQL over a prediction row that a pair must also pass to be clustered
    threshold: float = 0.9
    max_u_pairs: float = 1e6

    def splink_settings(self, engine: str = "duckdb") -> dict[str, Any]:
        """The Splink settings dict (untrained) for ``engine``."""
        from splink import block_on
        from splink.comparison_library import CustomComparison

        jw = "jaro_winkler" if engine == "spark" else "jaro_winkler_similarity"
        comparisons: list[Any] = []
        for comp in self.comparisons:
            levels: list[Any] = [{"sql_condition": f"{comp.column}_l IS NULL OR {comp.column}_r IS NULL",
                                  "label_for_charts": f"{comp.name} missing", "is_null_level": True}]
            for lvl in comp.levels:
                levels.append({"sql_condition": lvl.sql.replace("{jw}", jw), "label_for_charts": lvl.label,
                               "m_probability": lvl.m, **({"u_probability": lvl.u} if lvl.u is not None else {})})
            else_level = {"sql_condition": "ELSE", "label_for_charts": comp.else_label, "m_probability": comp.else_m}
            if all(lvl.u is not None for lvl in comp.levels):
                else_level["u_probability"] = max(1e-6, 1 - sum(lvl.u or 0.0 for lvl in comp.levels))
            levels.append(else_level)
            comparisons.append(CustomComparison(comparison_levels=levels, output_column_name=comp.name))

        return {
            "link_type": "dedupe_only",
            "unique_id_column_name": "unique_id",
            "comparisons": comparisons,
            "blocking_rules_to_generate_predictions": [block_on(*cols) for cols in self.blocking],
            # Splink keeps a pair's gamma_* only alongside the compared values; the values stay in the engine's
            # working tables (the select after predict drops them) and never reach the link table.
            "retain_matching_columns": True,
            "retain_intermediate_calculation_columns": False,
        }


@dataclass
class Edge:
    """A scored pair that passed the threshold and the guard."""

    left: str
    right: str
    probability: float
    reasons: list[str]


@dataclass
class Resolution:
    """What one run produced: a cluster id per record, the clustered edges, the trained model, pairs scored."""

    clusters: dict[str, str]
    edges: list[Edge]
    model: dict[str, Any]
    pairs_scored: int = 0
    trained: list[str] = field(default_factory=list)


def spark_session(master: str = "local[2]") -> Any:
    """The one Spark session of this process, small: 1 GB driver, few shuffle partitions (local mode)."""
    from pyspark.sql import SparkSession
    from splink.backends.spark import similarity_jar_location

    # Splink's string similarity UDFs (jaro_winkler, ...) ship as a jar that must be on the classpath at start.
    session = (SparkSession.builder.master(master).appName("crmind-identity")
               .config("spark.jars", similarity_jar_location())
               .config("spark.driver.memory", "1g").config("spark.sql.shuffle.partitions", "2")
               .config("spark.ui.enabled", "false").config("spark.sql.ansi.enabled", "false").getOrCreate())
    # Splink breaks long query lineages with checkpoints; they need a folder even in local mode.
    session.sparkContext.setCheckpointDir(tempfile.mkdtemp(prefix="crmind-spark-checkpoints-"))
    return session


def db_api(engine: str, spark_master: str = "local[2]") -> Any:
    """A Splink database API for ``engine`` ("duckdb" or "spark")."""
    if engine == "duckdb":
        from splink import DuckDBAPI

        return DuckDBAPI()
    if engine == "spark":
        from splink import SparkAPI

        # persist, not checkpoint: lineage breaks stay in memory instead of a disk round trip per step
        return SparkAPI(spark_session=spark_session(spark_master), break_lineage_method="persist",  # type: ignore[no-untyped-call]
                        num_partitions_on_repartition=2)
    raise IdentityError(f"unknown identity engine '{engine}': use duckdb or spark")


def _table(rows: Sequence[Row], columns: Sequence[str], engine: str) -> Any:
    """Rows as a typed table for the engine: every column a string, so an all-empty column still has a type."""
    import pyarrow as pa

    data = {c: pa.array([None if r.get(c) is None else str(r[c]) for r in rows], type=pa.string()) for c in columns}
    table = pa.table(data)
    return table.to_pandas() if engine == "spark" else table


def level_labels(model: dict[str, Any]) -> dict[str, list[str]]:
    """Per comparison, the label of each gamma value as Splink numbers them (index = gamma; null left out)."""
    out = {}
    for comp in model["comparisons"]:
        non_null = [lvl["label_for_charts"] for lvl in comp["comparison_levels"] if not lvl.get("is_null_level")]
        out[comp["output_column_name"]] = list(reversed(non_null))  # the last (else) level is gamma 0
    return out


def reasons_of(row: Row, labels: dict[str, list[str]], agreeing: dict[str, set[str]]) -> list[str]:
    """The agreeing levels of a prediction row, in words."""
    out = []
    for name, by_gamma in labels.items():
        gamma = row.get(f"gamma_{name}")
        if gamma is not None and gamma >= 0 and by_gamma[int(gamma)] in agreeing[name]:
            out.append(by_gamma[int(gamma)])
    return out


def match_weights(linker: Any) -> dict[str, dict[str, float]]:
    """Each level's match weight (log2 Bayes factor) exactly as Splink scored it, by comparison and label.

    Saved with the model so the on-create matcher adds up the same numbers; a level Splink could not
    estimate (never seen in the data) weighs 0, as neither evidence for nor against.
    """
    out: dict[str, dict[str, float]] = {}
    for comp in linker._settings_obj.comparisons:
        out[comp.output_column_name] = {
            lvl.label_for_charts: float(lvl._match_weight or 0.0) for lvl in comp.comparison_levels
            if not lvl.is_null_level}
    return out


def model_hash(model: dict[str, Any]) -> str:
    """A short hash of the trained parameters (the prior and every level's m and u), for the ledger."""
    params = {"prior": model.get("probability_two_random_records_match"),
              "levels": [[c["output_column_name"], lvl.get("label_for_charts"), lvl.get("m_probability"),
                          lvl.get("u_probability")] for c in model["comparisons"] for lvl in c["comparison_levels"]]}
    return hashlib.sha256(json.dumps(params, sort_keys=True).encode()).hexdigest()[:16]


def resolve(rows: Sequence[Row], spec: ModelSpec, columns: Sequence[str], *, engine: str = "duckdb",
            spark_master: str = "local[2]", seed: int = 42) -> Resolution:
    """Train a model on ``rows`` (each with a string ``unique_id``), score blocked pairs and cluster them.

    Records in no clustered pair are their own cluster. Deterministic for the same rows and seed.
    """
    if not rows:
        return Resolution({}, [], {}, 0)
    from splink import Linker, block_on

    api = db_api(engine, spark_master)
    table = api.register(_table(rows, ["unique_id", *columns], engine))
    linker = Linker(table, spec.splink_settings(engine), log_level=None)
    trained = _train(linker, spec, seed, rows, block_on, engine)
    predictions = linker.inference.predict()
    gammas = ", ".join(f"gamma_{c.name}" for c in spec.comparisons)
    filtered = linker.misc.query_sql(  # type: ignore[no-untyped-call]
        f"SELECT unique_id_l, unique_id_r, match_weight, match_probability, {gammas} FROM {predictions.physical_name} "
        f"WHERE match_probability >= {spec.threshold} AND ({spec.guard})")
    model = linker.misc.save_model_to_json()
    model["crmind_match_weights"] = match_weights(linker)
    labels = level_labels(model)
    agreeing = {c.name: {lvl.label for lvl in c.levels} for c in spec.comparisons}
    edges = [Edge(str(r["unique_id_l"]), str(r["unique_id_r"]), float(r["match_probability"]),
                  reasons_of(r, labels, agreeing)) for r in filtered.as_record_list()]
    clusters = connected_components([str(r["unique_id"]) for r in rows], [(e.left, e.right) for e in edges])
    counted = linker.misc.query_sql(  # type: ignore[no-untyped-call]
        f"SELECT count(*) AS n FROM {predictions.physical_name}").as_record_list()
    if engine == "spark":
        api.spark.catalog.clearCache()
    return Resolution(clusters, edges, model, int(counted[0]["n"]), trained)


def connected_components(ids: Sequence[str], links: Sequence[tuple[str, str]]) -> dict[str, str]:
    """Clusters at the threshold: connected components of the clustered edges, each named by its smallest id.

    The same clusters as Splink's ``cluster_pairwise_predictions_at_threshold``, computed on the edges already
    in Python: on Spark that call took 49 s for 110 edges in local mode (an iterative job per round).
    """
    parent = {i: i for i in ids}

    def find(x: str) -> str:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for a, b in links:
        ra, rb = find(a), find(b)
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)
    return {i: find(i) for i in ids}


def blocked_pairs(rows: Sequence[Row], columns: Sequence[str]) -> int:
    """How many pairs agree on every one of ``columns`` (all non-null): the size of one EM pass."""
    counts: dict[tuple[Any, ...], int] = {}
    for r in rows:
        key = tuple(r.get(c) for c in columns)
        if all(v is not None for v in key):
            counts[key] = counts.get(key, 0) + 1
    return sum(n * (n - 1) // 2 for n in counts.values())


def _train(linker: Any, spec: ModelSpec, seed: int, rows: Sequence[Row], block_on: Any, engine: str) -> list[str]:
    """Prior from sure rules, u by random sampling (seeded), m by EM on each blocking pass with enough pairs.

    A pass with few pairs teaches EM nonsense (one family sharing a phone would make "name differs" the
    typical match), so below ``MIN_EM_PAIRS`` it is skipped and the spec's starting m values stand.
    """
    from splink.internals.exceptions import SplinkException

    n = len(rows)
    trained = []
    try:
        linker.training.estimate_probability_two_random_records_match(list(spec.deterministic), recall=spec.recall)
    except (SplinkException, ZeroDivisionError, ValueError):  # no sure pair at all: one match per record
        linker._settings_obj._probability_two_random_records_match = min(0.5, 1 / max(n, 2))
    prior = linker._settings_obj._probability_two_random_records_match
    if not 0 < prior < 1 or math.isnan(prior):
        linker._settings_obj._probability_two_random_records_match = min(0.5, 1 / max(n, 2))
    if n >= MIN_U_SAMPLE_RECORDS or any(lvl.u is None for c in spec.comparisons for lvl in c.levels):
        # On Spark, one chunk below 100k records: each chunk is a job costing seconds whatever its size. DuckDB
        # keeps Splink's 10, which stop early once every level has been seen often enough (FEBRL 3: 11 s vs 31 s).
        chunks = 1 if engine == "spark" and n < 100_000 else 10
        linker.training.estimate_u_using_random_sampling(max_pairs=spec.max_u_pairs, seed=seed, num_chunks=chunks)
    for cols in spec.em_blocks:
        if blocked_pairs(rows, cols) < MIN_EM_PAIRS:
            continue
        try:
            linker.training.estimate_parameters_using_expectation_maximisation(block_on(*cols))
            trained.append("+".join(cols))
        except (SplinkException, ZeroDivisionError, ValueError) as exc:  # EM found nothing to learn from
            logging.getLogger(__name__).info("EM pass on %s skipped: %s", cols, exc)
    return trained
