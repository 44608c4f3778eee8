"""Build a fine-tuning set: synthetic CRM conversations and rules, plus what reps decided in the ledger.

    crmind finetune data [--out DIR] [--seed N] [--n N] [--no-ledger]

writes ``train.jsonl`` (one example a line, see ``finetune.examples``), ``negatives.jsonl`` (rejected proposals,
with the preferred call where the rep edited one) and ``manifest.json`` (counts, seed, the eval sets checked and
their hashes, what the leak filter and the erase rule dropped) to ``<data_dir>/finetune/datasets/<dataset_id>/``.
The same database and seed give the same ``train.jsonl``, byte for byte.
"""

from __future__ import annotations

import hashlib
import random
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.orm import Session

from agents.assistant.graph import SYSTEM
from config.settings import get_settings
from finetune.erase import erased_contact_ids
from finetune.examples import Example, Negative
from finetune.files import MANIFEST, NEGATIVES, TRAIN, count, datasets_dir, jsonl, write_json
from finetune.from_ledger import from_ledger
from finetune.leakage import EvalIndex, eval_index
from finetune.rules_synth import rule_examples
from finetune.scenarios import BY_TOOL, OTHERS, Scenario
from finetune.synth import Call, Scene, base_clock, reps, valid_call
from prompts.loader import load_prompt

DEFAULT_N = 2000
# Shares of the synthetic set. Tool calls (and the answers from their results) are most of what the assistant's
# model does; rules are the rule author's only task; the rest teach when not to call a tool.
SHARES: dict[str, float] = {"tools": 0.60, "rule": 0.14, "clarify": 0.07, "refusal": 0.07, "no_tool": 0.08,
                            "multi_step": 0.04}
MAX_TRIES = 12  # scenario attempts per wanted example before giving up (small CRMs have little to ask about)
DAYS_SPREAD = 14  # "today" varies over two weeks after the data's last activity, so the model reads the date


@dataclass
class Manifest:
    """What a built set holds and how it was made."""

    dataset_id: str
    path: str
    created_at: str
    seed: int
    n_synthetic: int
    languages: list[str]
    include_ledger: bool
    examples: int = 0
    negatives: int = 0
    counts: dict[str, dict[str, int]] = field(default_factory=dict)
    tools: dict[str, int] = field(default_factory=dict)
    """Tool-call targets per tool."""
    prompts: dict[str, str] = field(default_factory=dict)
    """The prompt versions the examples were rendered with (name@content hash)."""
    eval_sets: dict[str, str] = field(default_factory=dict)
    """Every eval set checked for leaks, with the hash of its source."""
    eval_sets_missing: list[str] = field(default_factory=list)
    leaks_dropped: dict[str, int] = field(default_factory=dict)
    invalid_dropped: int = 0
    erased_contacts: int = 0
    """Contacts already erased when the set was built (none of their data is in it)."""
    erased_dropped: int = 0
    ledger_skipped: dict[str, int] = field(default_factory=dict)
    rules_unlabelled: int = 0
    seconds: float = 0.0
    erasures: list[dict[str, Any]] = field(default_factory=list)

    def summary(self) -> str:
        """One line per fact a person checks first."""
        c = self.counts
        return "\n".join([
            f"dataset {self.dataset_id}: {self.examples} examples, {self.negatives} negatives ({self.seconds:.1f} s)",
            f"  sources:   {c.get('source', {})}",
            f"  kinds:     {c.get('kind', {})}",
            f"  languages: {c.get('language', {})}",
            f"  tools:     {len(self.tools)} of 20 called",
            f"  dropped:   {sum(self.leaks_dropped.values())} leaking eval text {self.leaks_dropped or ''}, "
            f"{self.invalid_dropped} invalid calls, {self.erased_dropped} of erased contacts",
            f"  eval sets: {len(self.eval_sets)} checked" + (f"; not available: {', '.join(self.eval_sets_missing)}"
                                                          if self.eval_sets_missing else ""),
            f"  path:      {self.path}"])


def _scenario(rng: random.Random) -> tuple[str, Scenario]:
    groups = [g for g in SHARES if g != "rule"]
    group = rng.choices(groups, weights=[SHARES[g] for g in groups])[0]
    if group == "tools":
        tool = rng.choice(sorted(BY_TOOL))
        return tool, BY_TOOL[tool]
    return group, rng.choice(OTHERS[group])


def synthetic(session: Session, engine: Engine, *, n: int, seed: int, languages: Sequence[str],
              progress: bool = False) -> tuple[list[Example], dict[str, int]]:
    """``n`` synthetic examples (assistant turns and rule compilations), and counts of what was not used."""
    from tqdm import tqdm

    rng = random.Random(seed)
    n_rules = round(n * SHARES["rule"])
    rules, unlabelled = rule_examples(n_rules * 2, random.Random(f"{seed}:rules"))
    rules = [e for e in rules if e.language in languages][:n_rules]
    people = reps(session)
    start = base_clock(session)
    cache: dict[tuple[int, str], list[Any]] = {}
    seen: dict[str, Example] = {}
    wanted = n - len(rules)
    bar = tqdm(total=wanted, desc="synthetic", disable=not progress)
    for _ in range(wanted * MAX_TRIES):
        if len(seen) >= wanted or not people:
            break
        _, scenario = _scenario(rng)
        now = start + timedelta(days=rng.randrange(DAYS_SPREAD), hours=rng.randrange(9),
                                minutes=rng.choice((0, 20, 40)))
        scene = Scene(session=session, engine=engine, principal=rng.choice(people), now=now,
                      rng=random.Random(rng.random()), lang=rng.choice(list(languages)), cache=cache)
        for example in scenario(scene):
            if example.language in languages and example.id not in seen and len(seen) < wanted:
                seen[example.id] = example
                bar.update(1)
    bar.close()
    return [*seen.values(), *rules], {"rules_unlabelled": unlabelled}


def _tool_calls_valid(example: Example | Negative) -> bool:
    targets = [example.target] if isinstance(example, Example) else [example.rejected, example.chosen]
    for message in targets:
        for call in (message or {}).get("tool_calls") or []:
            if not valid_call(Call(call["function"]["name"], call["function"]["arguments"])):
                return False
    return True


def _dataset_id(created: datetime, seed: int, body: str) -> str:
    return f"{created:%Y%m%d-%H%M%S}-seed{seed}-{hashlib.sha256(body.encode()).hexdigest()[:8]}"


def build_dataset(engine: Engine, *, out_dir: Path | None = None, seed: int = 0, n_synthetic: int = DEFAULT_N,
                  languages: Sequence[str] = ("en", "zh"), include_ledger: bool = True, data_dir: Path | None = None,
                  index: EvalIndex | None = None, progress: bool = False) -> Manifest:
    """Build a training set from the CRM behind ``engine`` and write it (see the module doc).

    Args:
        engine: the CRM database (the demo's, or a real one); it is only read.
        out_dir: where to write; default ``<data_dir>/finetune/datasets/<dataset_id>/``.
        seed: the same seed and database give the same examples.
        n_synthetic: how many synthetic examples (assistant turns and rules together).
        languages: the languages to keep.
        include_ledger: add approved proposals and kept answers (and rejected proposals as negatives).
        data_dir: crmind's data folder (default: the configured one); its ``ground_truth.jsonl`` is an eval set.
        index: the eval texts to check against (default: every eval set, ``finetune.leakage``).
        progress: show a progress bar.
    """
    started = time.perf_counter()
    data_dir = data_dir or get_settings().data_dir
    index = index or eval_index(data_dir=data_dir)
    with Session(engine) as session:
        erased = erased_contact_ids(session)
        examples, stats = synthetic(session, engine, n=n_synthetic, seed=seed, languages=languages,
                                    progress=progress)
        negatives: list[Negative] = []
        skipped: Counter[str] = Counter()
        if include_ledger:
            ledger = from_ledger(session, engine, erased=erased)
            examples += [e for e in ledger.examples if e.language in languages]
            negatives = [x for x in ledger.negatives if x.language in languages]
            skipped = ledger.skipped
        session.rollback()
    kept: list[Example] = []
    leaks: Counter[str] = Counter()
    invalid = dropped_erased = 0
    for example in examples:
        if set(example.contact_ids) & erased:
            dropped_erased += 1
        elif not _tool_calls_valid(example):
            invalid += 1
        elif (hit := index.leaks(example.trained_texts())) is not None:
            leaks[hit[0]] += 1
        else:
            kept.append(example)
    clean_negatives = [x for x in negatives if _tool_calls_valid(x) and index.leaks(x.trained_texts()) is None
                       and not set(x.contact_ids) & erased]
    train = [e.to_json() for e in kept]
    body = jsonl(train)
    created = datetime.now(UTC)
    dataset_id = _dataset_id(created, seed, body)
    folder = out_dir or datasets_dir(data_dir) / dataset_id
    folder.mkdir(parents=True, exist_ok=True)
    tools = Counter(c["function"]["name"] for e in kept for c in e.target.get("tool_calls") or [])
    manifest = Manifest(
        dataset_id=dataset_id, path=str(folder), created_at=created.isoformat(timespec="seconds"), seed=seed,
        n_synthetic=n_synthetic, languages=list(languages), include_ledger=include_ledger, examples=len(kept),
        negatives=len(clean_negatives), counts=count(train), tools=dict(sorted(tools.items())),
        prompts={"assistant_system": SYSTEM.ref, "assistant_turn": load_prompt("assistant_turn").ref,
                 "rule_author": load_prompt("rule_author").ref},
        eval_sets=index.hashes(), eval_sets_missing=index.missing, leaks_dropped=dict(sorted(leaks.items())),
        invalid_dropped=invalid, erased_contacts=len(erased), erased_dropped=dropped_erased,
        ledger_skipped=dict(sorted(skipped.items())), rules_unlabelled=stats["rules_unlabelled"])
    (folder / TRAIN).write_text(body, encoding="utf-8")
    (folder / NEGATIVES).write_text(jsonl(x.to_json() for x in clean_negatives), encoding="utf-8")
    manifest.seconds = round(time.perf_counter() - started, 2)
    write_json(folder / MANIFEST, asdict(manifest))
    return manifest
