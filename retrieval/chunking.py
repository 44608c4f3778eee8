"""Sentence-aware chunking for Chinese and English text."""

from __future__ import annotations

import re

# A sentence ends at Chinese or Western terminal punctuation (kept with the sentence) or a blank line.
_SENTENCE_END = re.compile(r"(?<=[。！？；!?;])|(?<=\.)(?=\s)|\n+")
_CJK = re.compile(r"[\u3400-\u9fff]")

# Budgets in characters: a CJK character is about one token, an English word about 5-6 characters.
MAX_CHARS = {"zh": 220, "en": 700}


def is_chinese(text: str) -> bool:
    """True when at least a fifth of the letters are CJK characters."""
    letters = [ch for ch in text if ch.isalpha()]
    return bool(letters) and sum(bool(_CJK.match(ch)) for ch in letters) * 5 >= len(letters)


def split_sentences(text: str) -> list[str]:
    """Split into sentences, keeping the terminal punctuation; empty pieces are dropped."""
    return [s.strip() for s in _SENTENCE_END.split(text) if s and s.strip()]


def chunk_text(text: str, max_chars: int | None = None) -> list[str]:
    """Pack whole sentences into chunks of at most ``max_chars``; a longer sentence is cut on its own."""
    limit = max_chars or MAX_CHARS["zh" if is_chinese(text) else "en"]
    chunks: list[str] = []
    current = ""
    for sentence in split_sentences(text):
        pieces = [sentence[i:i + limit] for i in range(0, len(sentence), limit)] or [sentence]
        for piece in pieces:
            sep = "" if not current or is_chinese(piece) else " "
            if current and len(current) + len(sep) + len(piece) > limit:
                chunks.append(current)
                current = piece
            else:
                current = f"{current}{sep}{piece}" if current else piece
    if current:
        chunks.append(current)
    return chunks
