"""When the model does not answer from what its tools found, the rep still gets the records, cited.

Small models (Qwen2.5 0.5B and 1.5B on CPU) often write another tool call out as text after a tool result,
instead of an answer. The records the tools returned are then shown as they are, each with its reference,
under a line that says so: nothing is invented, and the citations are checked like any answer's.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from typing import Any

from langchain_core.messages import AnyMessage, HumanMessage, ToolMessage

MAX_SHOWN = 10
MIN_NAME = 4  # shorter names ("Li") are too likely to appear by chance
LABEL_FIELDS = ("name", "subject", "title")
DETAIL_FIELDS = ("stage", "status", "priority", "amount", "close_date", "due", "kind", "ts")
MIN_QUOTE = 12  # characters: shorter quotes ("yes", a name) could come from anywhere
QUOTED = re.compile(r'"([^"\n]+)"|“([^”\n]+)”|「([^」\n]+)」|『([^』\n]+)』')
CALL_TEXT = re.compile(r'[{"]\s*"?name"?\s*:|<tool_call>|```json')
INTRO = {
    "en": "Here is what I found (the records as the tools returned them):",
    "zh": "以下是查到的记录（按工具返回的原样列出）：",
}


def _records(payload: Any, depth: int = 2) -> Iterable[dict[str, Any]]:
    """Dicts with a ``ref`` in a tool's result, down to ``depth`` levels (``get_record``'s related lists are two)."""
    if isinstance(payload, list):
        yield from (v for v in payload if isinstance(v, dict) and "ref" in v)
    elif isinstance(payload, dict):
        if "ref" in payload:
            yield payload
        if depth:
            for value in payload.values():
                yield from _records(value, depth - 1)


def found_records(messages: list[AnyMessage]) -> list[dict[str, Any]]:
    """The records this turn's tools returned (after the rep's last message), first seen first."""
    start = max((i for i, m in enumerate(messages) if isinstance(m, HumanMessage)), default=-1)
    seen: dict[str, dict[str, Any]] = {}
    for message in messages[start + 1:]:
        if not isinstance(message, ToolMessage) or message.status == "error":
            continue
        body = str(message.content)
        if not body.startswith("<data"):
            continue
        try:
            payload = json.loads(body.split("\n", 1)[1].rsplit("\n</data>", 1)[0])
        except (IndexError, ValueError):
            continue
        for record in _records(payload):
            seen.setdefault(str(record["ref"]), record)
    return list(seen.values())


def record_label(record: dict[str, Any]) -> str:
    """The record's name (or subject, or title); empty if it has none."""
    return next((str(record[f]) for f in LABEL_FIELDS if record.get(f)), "")


def _line(record: dict[str, Any]) -> str:
    label = record_label(record) or str(record["ref"])
    details = [str(record[f]) for f in DETAIL_FIELDS if record.get(f) not in (None, "")]
    return f"- {label}" + (f" · {' · '.join(details)}" if details else "") + f" [{record['ref']}]"


def cite_named_records(text: str, messages: list[AnyMessage]) -> str:
    """Cite, after its first mention, each record this turn's tools returned that the answer names but does not cite.

    Small models often answer right ("ESS-200 rollout is in proposal") without the reference; a record named
    verbatim, and returned by a tool in this turn, is what the sentence is about.
    """
    for record in found_records(messages):
        label, ref = record_label(record), f"[{record['ref']}]"
        if len(label) < MIN_NAME or ref in text:
            continue
        at = text.find(label)
        if at >= 0:
            end = at + len(label)
            end += 1 if text[end:end + 1] in ('"', "”", "」", "'") else 0  # keep a closing quote with the name
            text = f"{text[:end]} {ref}{text[end:]}"
    return text


def _plain(text: str) -> str:
    return " ".join(text.replace("…", " ").replace("...", " ").split()).lower()


def cite_quoted_text(text: str, messages: list[AnyMessage]) -> str:
    """Cite, after the closing quote, a record whose text this turn's tools returned and the answer quotes.

    "The note says: "Budget capped at 1.2M"" is about that note, as surely as its name would be.
    """
    records = [(r, _plain(str(r.get("body") or r.get("text") or ""))) for r in found_records(messages)]
    for match in reversed(list(QUOTED.finditer(text))):
        quoted = _plain(next(g for g in match.groups() if g))
        source = next((r for r, body in records if len(quoted) >= MIN_QUOTE and quoted in body), None)
        ref = f"[{source['ref']}]" if source else ""
        if source and ref not in text[match.end():match.end() + len(ref) + 2]:
            text = f"{text[:match.end()]} {ref}{text[match.end():]}"
    return text


def looks_like_a_call(text: str) -> bool:
    """Empty, or a tool call written out as text rather than an answer."""
    return not text.strip() or bool(CALL_TEXT.search(text))


def records_answer(model_text: str, messages: list[AnyMessage], language: str) -> str | None:
    """The model's prose (unless it is a tool call written as text), then the records found; None if none."""
    records = found_records(messages)
    if not records:
        return None
    prose = "" if looks_like_a_call(model_text) else model_text.strip()
    lines = [INTRO.get(language, INTRO["en"]), *(_line(r) for r in records[:MAX_SHOWN])]
    if len(records) > MAX_SHOWN:
        lines.append(f"… (+{len(records) - MAX_SHOWN})")
    return (prose + "\n\n" if prose else "") + "\n".join(lines)
