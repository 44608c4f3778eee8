"""When the model does not answer from what its tools found, the rep still gets the records, cited.

Small models (Qwen2.5 0.5B and 1.5B on CPU) often write another tool call out as text after a tool result,
instead of an answer. The records the tools returned are then shown as they are, each with its reference,
under a line that says so: nothing is invented, and the citations are checked like any answer's.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterable
from functools import lru_cache
from typing import Any

from langchain_core.messages import AnyMessage, HumanMessage, ToolMessage

from agents.assistant.state import this_turn
from crm.fields import STAGE_LABELS_ZH

MAX_SHOWN = 10
MIN_NAME = 4  # shorter names ("Li") are too likely to appear by chance
LABEL_FIELDS = ("name", "subject", "title")
DETAIL_FIELDS = ("stage", "status", "priority", "amount", "close_date", "due", "kind", "ts")
MIN_QUOTE = 12  # characters: shorter quotes ("yes", a name) could come from anywhere
MIN_COPY, SEED = 28, 8  # an unquoted copied passage: its weight (see _weight), and the run that starts one
MIN_ECHO, MAX_ECHO_EXTRA = 6, 12  # a repeated request of at least 6 characters, with at most 12 others around it
MIN_VALUE = 4  # a stated value shorter than this ("60", "won") could come from anywhere
# Fields whose values are facts about one record (names and text are cited above; ids, kinds and types are not
# evidence: "account" is the type of every account found)
VALUE_FIELDS = frozenset({"stage", "status", "priority", "amount", "total", "close_date", "due", "sla_due", "when",
                          "occurred_at", "created_at", "industry", "country", "city", "tier", "email", "phone",
                          "company", "source", "competitor", "product", "website", "employees", "annual_revenue"})
MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
          "November", "December")
ISO_DATE = re.compile(r"(\d{4})-(\d{2})-(\d{2})")
MONEY = re.compile(r"[A-Z]{3} ([\d,]+)(?:\.\d+)?")
QUOTED = re.compile(r'"([^"\n]+)"|“([^”\n]+)”|「([^」\n]+)」|『([^』\n]+)』')
GIVE_UP = re.compile(r"\b(?:can ?not|can't|cannot|couldn't|could not|unable to|am not able to)\s+(?:answer|help|find|"
                     r"provide|determine|tell)|无法(?:回答|提供|确定|找到|查到)|不能(?:回答|提供)|没有找到|未找到|查不到",
                     re.IGNORECASE)
MAX_GIVE_UP = 120  # longer answers say more than that they gave up
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


def tool_data(message: AnyMessage) -> Any:
    """The payload of a tool result wrapped as ``<data>`` (``graph.as_data``); None for anything else."""
    if not isinstance(message, ToolMessage) or message.status == "error":
        return None
    body = str(message.content)
    if not body.startswith("<data"):
        return None
    try:
        return json.loads(body.split("\n", 1)[1].rsplit("\n</data>", 1)[0])
    except (IndexError, ValueError):
        return None


def found_records(messages: list[AnyMessage]) -> list[dict[str, Any]]:
    """The records this turn's tools returned (after the rep's last message), first seen first."""
    seen: dict[str, dict[str, Any]] = {}
    for message in this_turn(messages):
        for record in _records(tool_data(message)):
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
    records = found_records(messages)
    tails = Counter(_own_part(record_label(r)) for r in records)
    for record in records:
        label, ref = record_label(record), f"[{record['ref']}]"
        if len(label) < MIN_NAME or ref in text:
            continue
        at = text.find(label)
        own = _own_part(label)
        if at < 0 and own != label and len(own) >= MIN_NAME and tails[own] == 1:
            label, at = own, text.find(own)  # "ESS-100 光储一体化（1台）" for "Acme - ESS-100 光储一体化（1台）"
        if at >= 0:
            end = at + len(label)
            if text[end:end + 2].lower() in ("'s", "’s"):
                end += 2  # the possessive stays with the name: "Acme Inc.'s [account:4] data"
            elif text[end:end + 1] in ('"', "”", "」", "'"):
                end += 1  # and so does a closing quote
            text = f"{text[:end]} {ref}{text[end:]}"
    return text


def _stated_forms(field: str, value: Any) -> list[str]:
    """How an answer may state a record's value: as returned, and a date, amount or stage as people write them."""
    text = str(value).strip()
    forms = [text]
    if date := ISO_DATE.match(text):
        year, month, day = date.groups()
        named = MONTHS[int(month) - 1] if 1 <= int(month) <= 12 else ""
        forms += [date.group(0), f"{year}年{int(month)}月{int(day)}日",  # a timestamp is stated by its day
                  f"{named} {int(day)}, {year}", f"{int(day)} {named} {year}"]
    elif money := MONEY.fullmatch(text):
        forms.append(money.group(1))  # "CNY 250,000.00" is stated as "250,000"
    elif field == "stage" and text in STAGE_LABELS_ZH:
        forms.append(STAGE_LABELS_ZH[text])
    return list(dict.fromkeys(f for f in forms if len(f) >= MIN_VALUE))


def _stated_at(form: str, text: str) -> int:
    """Where ``text`` states ``form`` as a whole word (any case); -1 if it does not."""
    # not inside a longer word, number or date; Chinese runs straight on ("预计2027年2月24日成交")
    edge = r"(?<![A-Za-z0-9_.,-])" if form[0].isascii() else ""
    end = r"(?![A-Za-z0-9_,-]|\.\d)" if form[-1].isascii() else ""
    found = re.search(edge + re.escape(form) + end, text, re.IGNORECASE)
    return found.end() if found else -1


def cite_stated_values(text: str, messages: list[AnyMessage]) -> str:
    """Cite a record after a value the answer states that only that record, of those found this turn, holds.

    "The ESS-100 rollout deal is expected to close on 2027-02-24." names the deal loosely, but the date is that
    deal's close date and no other record found in this turn has it: the sentence is about that record. A value
    two found records share ("proposal" in a list of deals) says nothing about which one, and is left alone.
    """
    if looks_like_a_call(text):  # a call written out is no answer: it is replaced by the records, not cited
        return text
    holders: dict[str, set[str]] = {}
    for record in found_records(messages):
        for field, value in record.items():
            if field not in VALUE_FIELDS or value in (None, "") or isinstance(value, dict | list):
                continue
            for form in _stated_forms(field, value):
                holders.setdefault(form.lower(), set()).add(str(record["ref"]))
    cited: set[str] = set()
    for form, refs in holders.items():
        ref = next(iter(refs))
        if len(refs) != 1 or ref in cited or f"[{ref}]" in text:
            continue
        end = _stated_at(form, text)
        if end >= 0:
            text = f"{text[:end]} [{ref}]{text[end:]}"
            cited.add(ref)
    return text


def _own_part(label: str) -> str:
    """A deal's own part of its name, after the account's ("Acme - ESS-200 rollout" -> "ESS-200 rollout")."""
    return label.rsplit(" - ", 1)[-1].strip()


def _plain(text: str) -> str:
    return " ".join(text.replace("…", " ").replace("...", " ").split()).lower()


def cite_quoted_text(text: str, messages: list[AnyMessage]) -> str:
    """Cite, after the closing quote, a record whose text this turn's tools returned and the answer quotes.

    "The note says: "Budget capped at 1.2M"" is about that note, as surely as its name would be. So is a long
    passage copied without quote marks (``cite_copied_text``).
    """
    records = [(r, _plain(str(r.get("body") or r.get("text") or ""))) for r in found_records(messages)]
    for match in reversed(list(QUOTED.finditer(text))):
        quoted = _plain(next(g for g in match.groups() if g))
        source = next((r for r, body in records if len(quoted) >= MIN_QUOTE and quoted in body), None)
        ref = f"[{source['ref']}]" if source else ""
        if source and ref not in text[match.end():match.end() + len(ref) + 2]:
            text = f"{text[:match.end()]} {ref}{text[match.end():]}"
    return cite_copied_text(text, messages)


def _weight(text: str) -> int:
    """Length with a CJK character counted twice: 12 Chinese characters say about as much as 24 letters."""
    return sum(2 if ord(c) >= 0x2E80 else 1 for c in text)


def _shared_spans(text: str, body: str) -> list[tuple[int, int]]:
    """Maximal runs of ``text`` (at least ``SEED`` characters) that occur in ``body``, left to right."""
    spans, i = [], 0
    while i <= len(text) - SEED:
        if text[i:i + SEED] not in body:
            i += 1
            continue
        j = i + SEED
        while j < len(text) and text[i:j + 1] in body:
            j += 1
        spans.append((i, j))
        i = j
    return spans


def cite_copied_text(text: str, messages: list[AnyMessage]) -> str:
    """Cite a record after a long passage the answer copies from its text, quote marks or not.

    The passage must be specific to one record: at least ``MIN_COPY`` (``_weight``) once the names of the turn's
    records and the rep's own words are taken out ("Moorland Telecom Inc." is in every note of that account),
    and found in only one record's text.
    """
    lowered = text.lower()
    if len(lowered) != len(text):  # a character whose lower case is longer: positions would not line up
        return text
    records = found_records(messages)
    bodies = [(r, str(r.get("body") or r.get("text") or "").lower()) for r in records]
    names = sorted({record_label(r).lower() for r in records if len(record_label(r)) >= MIN_NAME}, key=len,
                   reverse=True)
    asked = next((str(m.content).lower() for m in reversed(messages) if isinstance(m, HumanMessage)), "")
    inserts: dict[int, str] = {}
    for record, body in bodies:
        for start, end in _shared_spans(lowered, body):
            span = lowered[start:end]
            theirs = _shared_spans(span, asked)  # the rep's own words are not the record's
            specific = "".join(c for i, c in enumerate(span) if not any(a <= i < b for a, b in theirs))
            for name in names:
                specific = specific.replace(name, "")
            if _weight(specific.strip()) < MIN_COPY:
                continue
            if sum(span in other for _, other in bodies) == 1:
                inserts.setdefault(end, f"[{record['ref']}]")
    for end in sorted(inserts, reverse=True):
        ref = inserts[end]
        if ref not in text[end:end + len(ref) + 3]:
            text = f"{text[:end]} {ref}{text[end:]}"
    return text


def _core(text: str) -> str:
    return re.sub(r"[\W_]+", "", re.sub(r"\[[a-z_]+:[^\]\s]+\]", "", text.lower()))


def echoes(text: str, message: str) -> bool:
    """The answer only repeats the rep's request ("好的，我明白了。请总结一下…最近的备注。"): it answers nothing."""
    said, asked = _core(text), _core(message)
    return len(asked) >= MIN_ECHO and asked in said and len(said) - len(asked) <= MAX_ECHO_EXTRA


def gives_up(text: str) -> bool:
    """A short answer that only says it cannot answer ("抱歉，我无法回答这个问题。"): it claims nothing."""
    return len(text) <= MAX_GIVE_UP and bool(GIVE_UP.search(text))


def looks_like_a_call(text: str) -> bool:
    """Empty, or a tool call written out (or told: "I called `list_opportunities` with…") rather than an answer."""
    return not text.strip() or bool(CALL_TEXT.search(text)) or bool(_tool_named().search(text))


@lru_cache(maxsize=1)
def _tool_named() -> re.Pattern[str]:
    from agents.assistant.tools import TOOLS_BY_NAME  # the tools module imports this one's callers

    return re.compile(r"(?<![A-Za-z0-9_])(?:" + "|".join(map(re.escape, TOOLS_BY_NAME)) + r")(?![A-Za-z0-9_])")


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
