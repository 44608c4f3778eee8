"""The language of the rep's message, which the answer is written in (Chinese or English)."""

from __future__ import annotations

from typing import Literal

Language = Literal["en", "zh"]
LANGUAGE_NAMES: dict[str, str] = {"en": "English", "zh": "Chinese (简体中文)"}


def answer_language(text: str) -> Language:
    """``zh`` or ``en`` by the message's function words, not its names ("What did 佛山精工 ask?" is English).

    The same rule that picks the language of a search question (``retrieval.search.query_language``).
    """
    from retrieval.search import query_language

    return "zh" if query_language(text) == "zh" else "en"
