"""Identity resolution on any CSV of people: ``record_id`` plus any of name, company, email, phone, city, wechat_id.

The same person model as the CRM store's, trained on the file itself. Other columns are ignored (``country``
helps read phone numbers written without "+"), missing ones are simply not compared.
"""

from __future__ import annotations

import csv
import time
from dataclasses import dataclass
from pathlib import Path

from customers.errors import IdentityError
from customers.linkage import resolve
from customers.person_spec import COLUMNS, PERSON_SPEC, person_features

FIELDS = ("name", "company", "email", "phone", "city", "wechat_id")


@dataclass
class CsvSummary:
    """Counts of one CSV resolve."""

    records: int
    clusters: int
    duplicate_clusters: int
    seconds: float


def read_people(path: Path) -> list[dict[str, str]]:
    """The rows of a people CSV; clear errors for an unreadable file, no ``record_id`` column or repeated ids."""
    try:
        with path.open(encoding="utf-8-sig", newline="") as fh:
            reader = csv.DictReader(fh)
            header = [h.strip() for h in reader.fieldnames or []]
            if "record_id" not in header:
                found = ", ".join(header) if header else "no header at all"
                raise IdentityError(f"{path} needs a record_id column (found: {found})")
            reader.fieldnames = header
            rows = [{k: (v or "").strip() for k, v in r.items() if k} for r in reader]
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise IdentityError(f"cannot read {path}: {exc}") from exc
    seen: set[str] = set()
    for i, r in enumerate(rows, start=2):
        rid = r.get("record_id", "")
        if not rid:
            raise IdentityError(f"{path} line {i}: empty record_id")
        if rid in seen:
            raise IdentityError(f"{path} line {i}: record_id '{rid}' appears twice")
        seen.add(rid)
    return rows


def resolve_csv(input_path: Path, output_path: Path, *, engine: str = "duckdb", spark_master: str = "local[2]",
                seed: int = 42) -> CsvSummary:
    """Cluster the people in ``input_path``; write ``record_id,cluster_id`` (a cluster's first record id)."""
    started = time.perf_counter()
    people = read_people(Path(input_path))
    rows = [{"unique_id": p["record_id"], **person_features(**{f: p.get(f) or None for f in FIELDS},
                                                            country=p.get("country") or None)} for p in people]
    result = resolve(rows, PERSON_SPEC, COLUMNS, engine=engine, spark_master=spark_master, seed=seed)
    first: dict[str, str] = {}
    for p in people:  # name each cluster after its first record in file order
        first.setdefault(result.clusters[p["record_id"]], p["record_id"])
    try:
        with Path(output_path).open("w", encoding="utf-8", newline="") as fh:
            writer = csv.writer(fh)
            writer.writerow(["record_id", "cluster_id"])
            for p in people:
                writer.writerow([p["record_id"], first[result.clusters[p["record_id"]]]])
    except OSError as exc:
        raise IdentityError(f"cannot write {output_path}: {exc}") from exc
    sizes: dict[str, int] = {}
    for c in result.clusters.values():
        sizes[c] = sizes.get(c, 0) + 1
    return CsvSummary(len(people), len(sizes), sum(1 for n in sizes.values() if n > 1),
                      round(time.perf_counter() - started, 3))
