"""BM25-style sparse vectors: jieba for Chinese, product codes kept whole; IDF is applied by Qdrant."""

from __future__ import annotations

import logging
import re
import zlib
from collections import Counter
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

# Product codes (ESS-200-7731), words, numbers, and runs of CJK characters.
_TOKEN = re.compile(r"[A-Za-z0-9]+(?:[-_./][A-Za-z0-9]+)+|[A-Za-z0-9]+|[\u3400-\u9fff]+")
_CJK_RUN = re.compile(r"[\u3400-\u9fff]+")
_STOP_EN = frozenset(
    "a an and are as at be by did do does for from has have how i in is it its of on or our that the their "
    "they this to was we were what when where which who why will with you your about after before".split())
_STOP_ZH = frozenset(
    "的 了 是 在 和 与 及 吗 呢 吧 啊 我 我们 你 你们 他 她 他们 这 那 这个 那个 什么 哪 哪个 哪些 怎么 "
    "多少 有 没有 就 都 也 还 把 被 对 给 让 从 向 为 为了 一个 上 中 里 说 要 会 能 可以 "
    "一 个 之 其 该 此 等 又 而 或 哪里 哪儿 哪天 几".split())
_STOP = _STOP_EN | _STOP_ZH
K1, B, AVG_LEN = 1.2, 0.75, 60.0


@dataclass(frozen=True)
class SparseVec:
    """Indices and weights of a sparse vector (indices sorted, unique)."""

    indices: list[int]
    values: list[float]


@lru_cache(maxsize=1)
def _jieba() -> Any:
    import jieba
    jieba.setLogLevel(logging.WARNING)
    jieba.initialize()
    return jieba


def _stem(word: str) -> str:
    """A light English stemmer: enough to match plurals and common verb forms."""
    for suffix, keep in (("ies", "y"), ("ing", ""), ("ed", ""), ("es", ""), ("s", "")):
        if word.endswith(suffix) and len(word) - len(suffix) >= 3 and not word.endswith("ss"):
            word = word[: len(word) - len(suffix)] + keep
            break
    return word[:-1] if word.endswith("e") and len(word) > 4 else word


def tokenize(text: str) -> list[str]:
    """Terms of ``text``: lowercased, stemmed English words, codes whole and in parts, jieba words for Chinese."""
    out: list[str] = []
    for match in _TOKEN.finditer(text.lower()):
        tok = match.group(0)
        if _CJK_RUN.fullmatch(tok):
            out.extend(w for w in _jieba().lcut_for_search(tok) if w not in _STOP)
        elif any(ch in tok for ch in "-_./"):
            out.append(tok)
            out.extend(p for p in re.split(r"[-_./]", tok) if len(p) > 1)
        elif tok not in _STOP:
            out.append(_stem(tok) if tok.isalpha() else tok)
    return out


def function_word_language(text: str) -> str | None:
    """``en`` or ``zh`` by which language's function words the text uses more, None on a tie.

    Names are not function words, so "What did 佛山精工 ask?" is English and "Acme Energy的试点在哪里？" is
    Chinese, which the share of CJK characters alone gets wrong for long names.
    """
    en = zh = 0
    for match in _TOKEN.finditer(text.lower()):
        tok = match.group(0)
        if _CJK_RUN.fullmatch(tok):
            zh += sum(w in _STOP_ZH for w in _jieba().lcut(tok))
        else:
            en += tok in _STOP_EN
    return "en" if en > zh else "zh" if zh > en else None


def term_id(term: str) -> int:
    """Stable 31-bit id of a term (the same in every process)."""
    return zlib.crc32(term.encode()) & 0x7FFFFFFF


def _vector(weights: dict[int, float]) -> SparseVec:
    items = sorted(weights.items())
    return SparseVec([i for i, _ in items], [w for _, w in items])


def encode_document(text: str) -> SparseVec:
    """BM25 term-frequency part per term; Qdrant multiplies in the IDF (``Modifier.Idf``)."""
    terms = tokenize(text)
    counts = Counter(term_id(t) for t in terms)
    norm = K1 * (1 - B + B * len(terms) / AVG_LEN)
    return _vector({i: tf * (K1 + 1) / (tf + norm) for i, tf in counts.items()})


def encode_query(text: str) -> SparseVec:
    """Each distinct query term weighs one; the score is the sum of matching terms' BM25 weights."""
    return _vector({term_id(t): 1.0 for t in set(tokenize(text))})
