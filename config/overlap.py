"""Shared-text detection: runs of words (Latin script) and windows of characters (Chinese).

One helper for every check that asks "was this text copied from that one?": the tools eval's held-out test,
the safety suite's verbatim-leak check and the fine-tuning data's leak filter. Words are case-folded runs of
``[a-z0-9_]``; Chinese is compared as character windows with whitespace dropped, since it has no spaces
between words.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from collections.abc import Set as AbstractSet

CJK = re.compile(r"[\u4e00-\u9fff]")
_WORD = re.compile(r"[a-z0-9_]+")
_SPACE = re.compile(r"\s+")


def latin_words(text: str) -> list[str]:
    """The text's Latin words and numbers, case-folded (Chinese characters are not words here)."""
    return _WORD.findall(text.casefold())


def flat(text: str) -> str:
    """The text with all whitespace removed (how Chinese runs are compared)."""
    return _SPACE.sub("", text)


def word_grams(text: str, n: int) -> set[str]:
    """Every run of ``n`` consecutive words, joined by one space."""
    w = latin_words(text)
    return {" ".join(w[i:i + n]) for i in range(len(w) - n + 1)}


def cjk_windows(text: str, n: int, *, per_line: bool = True) -> set[str]:
    """Every ``n``-character window (whitespace dropped) that holds at least one Chinese character.

    ``per_line`` keeps windows inside a line, so two unrelated lines of a file never make a window together.
    """
    out: set[str] = set()
    for line in text.splitlines() if per_line else [text]:
        f = flat(line)
        if CJK.search(f):
            out |= {f[i:i + n] for i in range(len(f) - n + 1) if CJK.search(f[i:i + n])}
    return out


def shingles(text: str, *, words: int = 8, chars: int = 12) -> set[str]:
    """Word n-grams of the text's Latin words and character windows of its Chinese lines (whitespace dropped)."""
    return word_grams(text, words) | cjk_windows(text, chars)


def shared(text: str, grams: AbstractSet[str], *, words: int, chars: int) -> list[str]:
    """The runs of ``text`` (``words`` words, or ``chars`` Chinese characters) that are in ``grams``."""
    mine = word_grams(text, words) | cjk_windows(text, chars, per_line=False)
    return sorted(mine & grams)


def shingle_set(texts: Iterable[str], *, words: int, chars: int) -> set[str]:
    """The union of the texts' shingles (the "seen" set that a new text is checked against)."""
    out: set[str] = set()
    for text in texts:
        out |= shingles(text, words=words, chars=chars)
    return out
