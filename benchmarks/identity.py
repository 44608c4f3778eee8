"""Identity resolution benchmark: a store resolve and on-create matching at demo scale, and 1M synthetic contacts.

    PYTHONPATH=. python -m benchmarks.identity store --scale 10 --dir /tmp/id10    # builds the demo once (~70 s)
    PYTHONPATH=. nice -n 10 python -m benchmarks.identity million --n 1000000      # long: run it in the background

``store`` resolves the demo CRM (time, peak RSS) and then times ``likely_duplicates`` for existing contacts
re-typed the way people re-type them (another name order or script, upper-case email, spoken phone), beside
the naive baseline: one indexed exact-email query. ``million`` resolves synthetic people with planted
duplicates straight through the model (no database), beside the exact-identifier baseline, and scores both.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import threading
import time
from pathlib import Path
from typing import Any

import psutil


class PeakRss:
    """Samples this process's resident memory every 50 ms; ``peak`` is the highest seen (bytes)."""

    def __init__(self) -> None:
        self.peak = 0
        self._stop = threading.Event()
        self._proc = psutil.Process()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self._proc.memory_info().rss)
            self._stop.wait(0.05)

    def __enter__(self) -> PeakRss:
        self.peak = self._proc.memory_info().rss
        self._thread.start()
        return self

    def __exit__(self, *_: Any) -> None:
        self._stop.set()
        self._thread.join()


def _pct(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100)[int(q) - 1] if len(values) > 1 else values[0]


def _retyped(rng: random.Random, name: str, email: str | None, phone: str | None) -> dict[str, Any]:
    from crm.demo.names import spoken_phone
    from customers.normalize import name_forms

    forms = name_forms(name)
    if forms is not None and forms.script == "han":
        new_name = " ".join(w.title() for w in reversed(forms.key.split()))  # "Wei Wang" for 王伟
    else:
        parts = name.split()
        new_name = f"{parts[-1]}, {' '.join(parts[:-1])}" if len(parts) > 1 else name
    style = rng.randrange(3)
    if style == 0 and email:
        return {"name": new_name, "email": email.upper()}
    if style == 1 and phone:
        return {"name": new_name, "phone": spoken_phone(phone)}
    return {"name": new_name, "email": email, "phone": phone}


def store(scale: float, folder: Path, queries: int, resolve: bool = True) -> None:
    os.environ["CRMIND_DATA_DIR"] = str(folder)
    os.environ["CRMIND_DATABASE_URL"] = url = f"sqlite:///{folder}/crm.db"
    from config.db import make_engine
    from crm.demo import build_demo

    engine = make_engine(url)
    if not (folder / "identity_truth.jsonl").exists():
        build_demo(engine, scale=scale, out_dir=folder, progress=True)
    if resolve:
        _resolve(engine, scale)
    _on_create(engine, queries)


def _resolve(engine: Any, scale: float) -> None:
    from config.db import transaction
    from customers.identity import resolve_store

    with PeakRss() as rss, transaction(engine) as s:
        t0 = time.perf_counter()
        summary = resolve_store(s)
        resolve_s = time.perf_counter() - t0
    print(f"store resolve, scale {scale}: {summary.records:,} contacts and leads, {summary.accounts:,} accounts, "
          f"{summary.visitors_linked:,} visitors -> {summary.customers:,} customers, {summary.duplicate_clusters:,} "
          f"duplicate clusters; {summary.pairs_scored:,} pairs scored; {resolve_s:.1f} s, peak RSS "
          f"{rss.peak / 2**20:,.0f} MiB")


def _on_create(engine: Any, queries: int) -> None:
    from sqlalchemy import func, select

    from config.db import session_factory
    from crm.models import Account, Contact
    from customers.identity import likely_duplicates

    rng = random.Random(3)
    with session_factory(engine)() as s:
        n = s.scalar(select(func.count()).select_from(Contact)) or 0
        picks = [s.get(Contact, rng.randrange(1, n + 1)) for _ in range(queries)]
        ours: list[float] = []
        naive: list[float] = []
        found = found_naive = 0
        likely_duplicates(s, "contact", {"name": "warm up", "email": "warm@up.cn"})
        for c in picks:
            account = s.get(Account, c.account_id) if c.account_id else None
            values = {**_retyped(rng, c.name, c.email, c.phone), "account_id": c.account_id,
                      "language": c.language, "country": account.country if account else None}
            t = time.perf_counter()
            cands = likely_duplicates(s, "contact", values)
            ours.append((time.perf_counter() - t) * 1000)
            found += any(x.object_type == "contact" and x.record_id == c.id for x in cands)
            t = time.perf_counter()
            hit = s.scalars(select(Contact.id).where(Contact.email == values.get("email"))).all()
            naive.append((time.perf_counter() - t) * 1000)
            found_naive += c.id in hit
    print(f"{'on-create match (' + str(queries) + ' re-typed contacts)':<48} {'p50 ms':>8} {'p95 ms':>8} "
          f"{'found':>7}")
    print(f"{'crmind likely_duplicates (keys + model)':<48} {_pct(ours, 50):>8.2f} {_pct(ours, 95):>8.2f} "
          f"{found / queries:>7.1%}")
    print(f"{'baseline: exact email query':<48} {_pct(naive, 50):>8.2f} {_pct(naive, 95):>8.2f} "
          f"{found_naive / queries:>7.1%}")


def synthetic_people(n: int, seed: int = 11) -> tuple[list[dict[str, Any]], dict[str, str]]:
    """``n`` people rows (5% of them duplicates of another, re-typed) and the truth: record -> person."""
    from crm.demo import names as nm
    from customers.person_spec import person_features

    rng = random.Random(seed)
    companies = [f"{rng.choice(nm.EN_COMPANY_HEAD)} {rng.choice(['Labs', 'Works', 'Systems', 'Energy', 'Foods'])} "
                 f"{i}" for i in range(n // 10)]
    base = n - n // 20
    raw = []
    for i in range(base):
        zh = rng.random() < 0.35
        p = nm.zh_person(rng) if zh else nm.en_person(rng)
        company = rng.choice(companies)
        domain = company.lower().replace(" ", "") + ".com"
        phone = nm.cn_mobile(rng) if zh else f"+1 {rng.randrange(200, 999)} {rng.randrange(10**7):07d}"
        raw.append((f"p{i}", p, f"{p.local}@{domain}", phone, company, "zh" if zh else "en"))
    rows, truth = [], {}
    for rid, p, email, phone, company, lang in raw:
        rows.append({"unique_id": rid, **person_features(name=p.name, email=email, phone=phone, company=company,
                                                         language=lang)})
        truth[rid] = rid
    for j in range(n - base):
        rid, p, email, phone, company, lang = raw[rng.randrange(base)]
        style = rng.randrange(3)
        email2 = email.upper() if style == 0 else f"{p.local.replace('.', '')}{rng.randrange(10, 99)}@gmail.com"
        phone2 = nm.spoken_phone(phone) if style != 2 else None
        dup = f"d{j}"
        rows.append({"unique_id": dup, **person_features(name=rng.choice(p.alt_names), email=email2, phone=phone2,
                                                         company=company, language=lang)})
        truth[dup] = rid
    return rows, truth


def million(n: int) -> None:
    from customers.linkage import resolve
    from customers.person_spec import COLUMNS, PERSON_SPEC
    from eval.identity import bcubed, exact_key_baseline, pairwise

    t0 = time.perf_counter()
    rows, truth = synthetic_people(n)
    gen_s = time.perf_counter() - t0
    with PeakRss() as rss:
        t0 = time.perf_counter()
        result = resolve(rows, PERSON_SPEC, COLUMNS)
        model_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    base = exact_key_baseline(rows, ("email_norm", "phone_e164"))
    base_s = time.perf_counter() - t0
    print(f"{n:,} synthetic people ({len(set(truth.values())):,} persons), generated and normalised in {gen_s:.0f} s")
    print(f"{'method':<44} {'seconds':>8} {'peak RSS MiB':>13} {'pairs':>12} {'pair F1':>8} {'B3 F1':>7}")
    print(f"{'crmind (splink on duckdb, 2 cores)':<44} {model_s:>8.1f} {rss.peak / 2**20:>13,.0f} "
          f"{result.pairs_scored:>12,} {pairwise(result.clusters, truth)['f1']:>8.4f} "
          f"{bcubed(result.clusters, truth)['f1']:>7.4f}")
    print(f"{'baseline: exact normalised email or phone':<44} {base_s:>8.1f} {'':>13} {'':>12} "
          f"{pairwise(base, truth)['f1']:>8.4f} {bcubed(base, truth)['f1']:>7.4f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("store", help="resolve the demo CRM and time on-create matching")
    s.add_argument("--scale", type=float, default=10.0)
    s.add_argument("--dir", type=Path, default=Path("/tmp/crmind-identity-bench"))
    s.add_argument("--queries", type=int, default=400)
    s.add_argument("--no-resolve", action="store_true", help="time on-create matching on the existing links")
    m = sub.add_parser("million", help="resolve synthetic people through the model")
    m.add_argument("--n", type=int, default=1_000_000)
    args = parser.parse_args()
    if args.cmd == "store":
        args.dir.mkdir(parents=True, exist_ok=True)
        store(args.scale, args.dir, args.queries, resolve=not args.no_resolve)
    else:
        million(args.n)


if __name__ == "__main__":
    main()
