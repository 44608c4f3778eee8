"""Retrieval eval: recall@5, recall@10 and MRR for dense, sparse and hybrid, per embedding model.

The question set comes from the demo's planted ground-truth facts (``data/ground_truth.jsonl``): each
fact has paraphrased questions in English and Chinese, so a Chinese question about an English note (and
the reverse) is a cross-language case. A hit is correct when it comes from the fact's record.

    crmind eval retrieval --models minilm,e5
"""

from __future__ import annotations

import json
import random
import tempfile
import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

from sqlalchemy import Engine

from config.db import get_engine, session_factory
from config.errors import CrmindError
from config.settings import get_settings
from crm.access import Principal
from retrieval.documents import Chunk, Loader
from retrieval.embeddings import make_embedder
from retrieval.indexer import IndexSummary, build, write_chunks
from retrieval.search import fusion_for, query_language, search
from retrieval.store import EdgeStore, Fusion, Mode

MODES: tuple[Mode, ...] = ("dense", "sparse", "hybrid")
# Rows of the report: each search mode, plus hybrid without its cross-language leg (the ablation that shows
# what that leg is worth). Label -> (mode, cross-language weight or None for the configured one).
VARIANTS: dict[str, tuple[Mode, float | None]] = {
    "dense": ("dense", None), "sparse": ("sparse", None), "hybrid-2": ("hybrid", 0.0), "hybrid": ("hybrid", None)}
BUCKETS = ("en", "zh", "zh->en", "en->zh", "all")
ADMIN = Principal(user_id=0, role="admin", name="eval")


class EvalError(CrmindError):
    """An eval that can't run as asked (no ground truth, no model)."""



def load_questions(path: Path, max_questions: int | None = None) -> list[dict[str, Any]]:
    """One item per question: its text, language, the record that answers it and the bucket it counts in."""
    items: list[dict[str, Any]] = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        fact = json.loads(line)
        for n, q in enumerate(fact["questions"]):
            bucket = q["lang"] if q["lang"] == fact["lang"] else f"{q['lang']}->{fact['lang']}"
            items.append({"id": fact["id"], "n": n, "text": q["text"], "lang": q["lang"], "record": fact["record"],
                          "bucket": bucket, "kind": fact.get("kind", "")})
    return items[:max_questions] if max_questions else items


def _score(ranks: list[int | None]) -> dict[str, float]:
    n = len(ranks)
    if not n:
        return {"n": 0, "recall@5": 0.0, "recall@10": 0.0, "mrr": 0.0}
    return {"n": n,
            "recall@5": sum(r is not None and r <= 5 for r in ranks) / n,
            "recall@10": sum(r is not None and r <= 10 for r in ranks) / n,
            "mrr": sum(1 / r for r in ranks if r is not None and r <= 10) / n}


def _rank(records: list[str], target: str) -> int | None:
    return records.index(target) + 1 if target in records else None


def _index_subset(engine: Engine, store: EdgeStore, embedder: Any, targets: set[str], distractors: int,
                  seed: int, progress: bool) -> IndexSummary:
    """Index the answer records plus ``distractors`` other records drawn at random (a faster eval corpus)."""
    from tqdm import tqdm

    started = time.perf_counter()
    summary = IndexSummary()
    with session_factory(engine)() as session:
        loader = Loader(session)
        rows = [(obj, row.id) for obj, row in loader.iter_all()]
        rng = random.Random(seed)
        others = [r for r in rows if f"{r[0]}:{r[1]}" not in targets]
        chosen = [r for r in rows if f"{r[0]}:{r[1]}" in targets] + rng.sample(others, min(distractors, len(others)))
        batch: list[Chunk] = []
        for obj, rid in tqdm(chosen, desc="indexing", unit="rec", disable=not progress):
            batch.extend(loader.chunks_of(obj, rid) or [])
            summary.records += 1
            if len(batch) >= 256:
                write_chunks(store, embedder, batch)
                summary.chunks += len(batch)
                batch = []
        write_chunks(store, embedder, batch)
        summary.chunks += len(batch)
    store.optimize()
    summary.seconds = time.perf_counter() - started
    return summary


def evaluate_model(engine: Engine, model: str, questions: Sequence[dict[str, Any]], *, progress: bool = True,
                   distractors: int | None = None, seed: int = 1, workdir: Path | None = None,
                   fusion: Fusion | None = None) -> dict[str, Any]:
    """Index the CRM (or answers + sampled distractors) with one model into a scratch store, then score.

    ``fusion`` overrides the configured hybrid fusion (for tuning its weights).
    """
    from tqdm import tqdm

    embedder = make_embedder(model)
    with tempfile.TemporaryDirectory(dir=workdir) as tmp:
        store = EdgeStore(Path(tmp) / "shard", embedder.dim)
        try:
            if distractors is None:
                summary = build(engine, store, embedder, progress=progress)
            else:
                summary = _index_subset(engine, store, embedder, {q["record"] for q in questions}, distractors,
                                        seed, progress)
            ranks: dict[str, dict[str, list[int | None]]] = {v: defaultdict(list) for v in VARIANTS}
            latencies: list[float] = []
            per_question: list[dict[str, Any]] = []
            for q in tqdm(questions, desc=f"questions ({model})", disable=not progress):
                configured = fusion or fusion_for(query_language(q["text"]))
                for label, (mode, cross) in VARIANTS.items():
                    use = configured if cross is None else replace(configured, cross=cross)
                    t0 = time.perf_counter()
                    hits = search(ADMIN, q["text"], store=store, embedder=embedder, limit=30, mode=mode,
                                  fusion=use)
                    latencies.append(time.perf_counter() - t0)
                    records = list(dict.fromkeys(h.record for h in hits))[:10]
                    r = _rank(records, q["record"])
                    ranks[label][q["bucket"]].append(r)
                    ranks[label]["all"].append(r)
                    if label == "hybrid":  # what search runs: kept per question for the item-level report
                        per_question.append({**q, "rank": r})
        finally:
            store.close()
    latencies.sort()
    return {
        "model": model,
        "index": {"records": summary.records, "chunks": summary.chunks, "seconds": round(summary.seconds, 1),
                  "chunks_per_s": round(summary.chunks / summary.seconds, 1) if summary.seconds else None,
                  "embedded": summary.embedded, "cached": summary.cached},
        "query_p50_ms": round(latencies[len(latencies) // 2] * 1000, 2) if latencies else None,
        "fusion": asdict(fusion) if fusion else {lang: asdict(fusion_for(lang)) for lang in ("en", "zh")},
        "results": {v: {b: _score(ranks[v].get(b, [])) for b in BUCKETS} for v in VARIANTS},
        "per_question": per_question,
    }


def run_retrieval_eval(*, ground_truth: Path | None = None, models: Sequence[str] = ("minilm", "e5"),
                       engine: Engine | None = None, max_questions: int | None = None,
                       distractors: int | None = None, progress: bool = True) -> dict[str, Any]:
    """Run the eval for each model on the configured CRM and return the report."""
    settings = get_settings()
    path = ground_truth or settings.data_dir / "ground_truth.jsonl"
    if not path.exists():
        raise EvalError(f"no ground truth at {path}: run `crmind demo` first")
    questions = load_questions(path, max_questions)
    counts: dict[str, int] = defaultdict(int)
    for q in questions:
        counts[q["bucket"]] += 1
    corpus = "full CRM" if distractors is None else f"answers + {distractors} random records"
    report: dict[str, Any] = {"ground_truth": str(path), "questions": len(questions), "buckets": dict(counts),
                              "corpus": corpus, "models": {}}
    for model in models:
        report["models"][model] = evaluate_model(engine or get_engine(), model, questions, progress=progress,
                                                 distractors=distractors)
    return report


def format_report(report: dict[str, Any]) -> str:
    """The report as a plain-text table: one row per model and mode, R@5 / R@10 / MRR per bucket."""
    sizes = {**report["buckets"], "all": report["questions"]}
    head = f"{'model':<8} {'mode':<8} " + " ".join(f"{b} ({sizes.get(b, 0)})".rjust(20) for b in BUCKETS)
    lines = [f"retrieval eval: {report['questions']} questions over {report.get('corpus', 'full CRM')}; "
             "cells are R@5 / R@10 / MRR", head]
    for name, res in report["models"].items():
        for label in res["results"]:
            cells = [res["results"][label][b] for b in BUCKETS]
            lines.append(f"{name:<8} {label:<8} " + " ".join(
                f"{c['recall@5']:.2f} / {c['recall@10']:.2f} / {c['mrr']:.2f}".rjust(20) for c in cells))
    for name, res in report["models"].items():
        ix = res["index"]
        lines.append(f"{name}: indexed {ix['chunks']} chunks in {ix['seconds']}s ({ix['chunks_per_s']} chunks/s), "
                     f"query p50 {res['query_p50_ms']} ms")
    lines.append("hybrid-2 = dense + BM25; hybrid = dense + BM25 + the cross-language dense leg (what search runs)")
    return "\n".join(lines)


def print_report(report: dict[str, Any]) -> None:
    """Print the table."""
    print(format_report(report))
