"""The grammar path: rule text (Chinese or English) -> tokens (lexicon.yaml) -> parse tree (grammar.lark) -> ``Rule``.

Tokenising is longest-match over one unit stream for both languages (English words, Chinese characters,
numbers, URLs, symbols), so "访问价格页≥2次" and "views the pricing page at least 2 times" become the same
token sequence shape. An Earley parser over those tokens builds a tree; the tree is interpreted into a
``Rule``. Whatever the text leaves open that changes what the rule does (an unknown pool, a duration that
could be per visit or in total) becomes a ``Question`` instead of a guess.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml
from lark import Lark, Token, Tree
from lark.exceptions import LarkError
from lark.lexer import Lexer
from pydantic import BaseModel, ValidationError

from rules.catalog import Catalog, file_catalog
from rules.language import (
    AggregateCondition,
    Assign,
    CreateContact,
    CreateLead,
    CreateTask,
    Delete,
    Escalate,
    EventFilter,
    EventTrigger,
    Export,
    FieldCondition,
    IdentityCondition,
    InactivityCondition,
    Notify,
    RecordTrigger,
    Rule,
    ScheduleTrigger,
    ScoreCondition,
    SegmentCondition,
    SendMessage,
    SequenceCondition,
    UpdateField,
)

HERE = Path(__file__).resolve().parent
DEFAULT_WINDOW_MIN = 1440  # a windowed condition with no stated window looks back one day (the explanation says so)
_UNITS = re.compile(r"https?://[^\s，,。；;、]+|\d+(?:,\d{3})*(?:\.\d+)?|[a-z][a-z0-9_\-]*(?:'[a-z]+)?"
                    r"|[\u4e00-\u9fff]|>=|<=|[≥≤<>=¥￥$%,，;；、.。:：!！?？]")
_CJK = re.compile(r"[\u4e00-\u9fff]")
_ZH_DIGITS = {"零": 0, "一": 1, "二": 2, "两": 2, "三": 3, "四": 4, "五": 5, "六": 6, "七": 7, "八": 8, "九": 9}
_ZH_SCALES = {"十": 10, "百": 100, "千": 1000}
_MULTIPLIERS = {"万": 10_000, "k": 1_000, "千": 1_000, "million": 1_000_000, "m": 1_000_000}
_MINUTES = {"SECOND": 1 / 60, "MINUTE": 1, "HOUR": 60, "DAY": 1440, "WEEK": 10080, "MONTH": 43200}
_FIELD_OBJECT = {"amount": "opportunity", "stage": "opportunity", "probability": "opportunity", "priority": "case",
                 "score": "lead", "tier": "account"}


@dataclass(frozen=True)
class Tok:
    """One token: its grammar type, the words it came from, and its lexicon value (if any)."""

    type: str
    text: str
    value: Any = None


class Option(BaseModel):
    """One answer to a question: the value to send back, and its label."""

    value: str
    label: str


class Question(BaseModel):
    """Something the text leaves open; answered through ``clarifications[id]``."""

    id: str
    text: str
    options: list[Option] = []


@dataclass
class ParseResult:
    """A rule, or the questions that must be answered first (``rule`` None), or neither (no parse)."""

    rule: Rule | None = None
    questions: list[Question] = field(default_factory=list)
    error: str = ""
    tokens: list[Tok] = field(default_factory=list)


def language_of(text: str) -> str:
    """"zh" when the text has Chinese characters, else "en"."""
    return "zh" if _CJK.search(text) else "en"


# ---------------------------------------------------------------------------------------------- tokenising


def _units(text: str) -> list[str]:
    text = text.lower().replace("’", "'")
    text = re.sub(r"'s\b", "", text)
    return _UNITS.findall(text)


@lru_cache(maxsize=8)
def _lexicon(catalog: Catalog) -> dict[str, list[tuple[tuple[str, ...], str, Any]]]:
    """First unit -> [(units, type, value)], longest first; the catalog's pool and queue words included."""
    data = yaml.safe_load((HERE / "lexicon.yaml").read_text(encoding="utf-8"))
    entries: list[tuple[str, str, Any]] = []
    for kind, spec in data.items():
        for entry in spec if isinstance(spec, list) else [spec]:
            for lang in ("en", "zh"):
                for form in entry.get(lang) or []:
                    entries.append((str(form), kind, entry.get("value")))
    for dest, kind in [(p, "POOLNAME") for p in catalog.pools] + [(q, "QUEUENAME") for q in catalog.queues]:
        for word in {*dest.words, dest.key}:
            entries.append((word, kind, dest.key))
    table: dict[str, list[tuple[tuple[str, ...], str, Any]]] = {}
    for form, kind, value in entries:
        units = tuple(_units(form))
        if units:
            table.setdefault(units[0], []).append((units, kind, value))
    for options in table.values():
        options.sort(key=lambda o: -len(o[0]))
    return table


def _zh_number(chars: str) -> int:
    total, current = 0, 0
    for ch in chars:
        if ch in _ZH_DIGITS:
            current = _ZH_DIGITS[ch]
        else:
            total += (current or 1) * _ZH_SCALES[ch]
            current = 0
    return total + current


def tokenize(text: str, catalog: Catalog | None = None) -> list[Tok]:
    """Tokens of ``text``; FILLER words dropped, unknown Chinese runs merged into one WORD."""
    table = _lexicon(catalog or file_catalog())
    units = _units(text)
    out: list[Tok] = []
    i = 0
    while i < len(units):
        unit = units[i]
        match = next((o for o in table.get(unit, []) if tuple(units[i:i + len(o[0])]) == o[0]), None)
        if match is not None:
            length, kind, value = len(match[0]), match[1], match[2]
            if kind != "FILLER":
                out.append(Tok(kind, " ".join(units[i:i + length]), value))
            i += length
            continue
        if unit[0].isdigit() or unit in _ZH_DIGITS or unit in _ZH_SCALES:
            j = i
            if unit[0].isdigit():
                number = float(unit.replace(",", ""))
                j += 1
            else:
                while j < len(units) and (units[j] in _ZH_DIGITS or units[j] in _ZH_SCALES):
                    j += 1
                number = float(_zh_number("".join(units[i:j])))
            if j < len(units) and units[j] in _MULTIPLIERS:
                number *= _MULTIPLIERS[units[j]]
                j += 1
            out.append(Tok("NUM", "".join(units[i:j]), number))
            i = j
            continue
        if unit.startswith("http"):
            out.append(Tok("URL", unit, unit))
        elif _CJK.match(unit) and out and out[-1].type == "WORD" and _CJK.match(out[-1].text[-1]):
            out[-1] = Tok("WORD", out[-1].text + unit, out[-1].text + unit)
        elif unit not in "?？":
            out.append(Tok("WORD", unit, unit))
        i += 1
    return out


# ---------------------------------------------------------------------------------------------- parsing


class _Tokens(Lexer):
    """Feeds our tokens to Lark; each Lark token's value is its index into the list."""

    def __init__(self, lexer_conf: Any) -> None:
        pass

    def lex(self, data: Any) -> Any:  # noqa: D102
        for i, tok in enumerate(data):
            yield Token(tok.type, str(i))


@lru_cache(maxsize=1)
def _grammar() -> Lark:
    source = (HERE / "grammar.lark").read_text(encoding="utf-8")
    source = source.replace("%declare UNRESOLVED WORD URL", "%declare UNRESOLVED WORD URL POOLNAME QUEUENAME")
    source = source.replace("name: WORD+ | VALUE", "name: WORD+ | VALUE | POOLNAME | QUEUENAME")
    return Lark(source, parser="earley", lexer=_Tokens, ambiguity="resolve")


class _NoParse(Exception):
    pass


class _Interp:
    """Turns a parse tree into a ``Rule`` (or questions), remembering what the text left open."""

    def __init__(self, toks: list[Tok], text: str, catalog: Catalog, clarifications: dict[str, str]) -> None:
        self.toks, self.text, self.catalog, self.answers = toks, text, catalog, clarifications
        self.lang = language_of(text)
        self.questions: list[Question] = []

    # helpers over the tree
    def tok(self, leaf: Token) -> Tok:
        return self.toks[int(leaf.value)]

    def leaves(self, node: Tree | Token) -> list[Tok]:
        if isinstance(node, Token):
            return [self.tok(node)]
        return [t for child in node.children for t in self.leaves(child)]

    def types(self, node: Tree) -> list[str]:
        return [t.type for t in self.leaves(node)]

    def first(self, node: Tree, kind: str) -> Tok | None:
        return next((t for t in self.leaves(node) if t.type == kind), None)

    @staticmethod
    def sub(node: Tree, name: str) -> Tree | None:
        return next((c for c in node.children if isinstance(c, Tree) and c.data == name), None)

    @staticmethod
    def subs(node: Tree, name: str) -> list[Tree]:
        return [c for c in node.children if isinstance(c, Tree) and c.data == name]

    def ask(self, qid: str, text_en: str, text_zh: str, options: list[tuple[str, str]]) -> str | None:
        if qid in self.answers:
            return self.answers[qid]
        self.questions.append(Question(id=qid, text=text_zh if self.lang == "zh" else text_en,
                                       options=[Option(value=v, label=label) for v, label in options]))
        return None

    # pieces
    def minutes(self, node: Tree | None) -> float | None:
        if node is None:
            return None
        kinds = self.leaves(node)
        if any(t.type == "HALF_HOUR" for t in kinds):
            return 30
        num = next((t.value for t in kinds if t.type == "NUM"), 1.0)
        unit = next(t.type for t in kinds if t.type in _MINUTES)
        return float(num) * _MINUTES[unit]

    def window(self, node: Tree) -> int | None:
        windows = [w for w in node.children if isinstance(w, Tree) and w.data == "window"]
        if not windows:
            return None
        minutes = self.minutes(self.sub(windows[0], "dur"))
        return max(1, int(round(minutes or DEFAULT_WINDOW_MIN)))

    def cmp(self, node: Tree | None, default: str = "ge") -> str:
        if node is None:
            return default
        found = self.sub(node, "cmp")
        kinds = [t.type for t in self.leaves(found)] if found else []
        if "OR_MORE" in self.types(node):
            return "ge"
        return {"GT": "gt", "GE": "ge", "LT": "lt", "LE": "le", "EQ": "eq"}.get(kinds[0] if kinds else "", default)

    def evfilter(self, node: Tree) -> EventFilter:
        types: list[str] = []
        page = None
        for t in self.leaves(node):
            if t.type == "EVENT":
                types.append(t.value)
            elif t.type == "PAGE":
                if str(t.value).startswith("page:"):
                    page = str(t.value).removeprefix("page:")
                else:
                    types.append(t.value)
        if not types and page is None:
            types = ["page_view"]  # "visits the website"
        return EventFilter(types=sorted(set(types)), page_prefix=page)  # type: ignore[arg-type]

    def count(self, node: Tree | None) -> tuple[str, float]:
        if node is None:
            return "ge", 1
        leaves = self.leaves(node)
        twice = next((t for t in leaves if t.type == "TWICE"), None)
        n = float(twice.value) if twice else float(next(t.value for t in leaves if t.type == "NUM"))
        return self.cmp(node), n

    # clauses
    def clause(self, node: Tree) -> dict[str, Any]:
        subject = self.sub(node, "subject")
        body = next(c for c in node.children if isinstance(c, Tree) and c.data != "subject")
        out: dict[str, Any] = {"kind": body.data, "node": body}
        if subject is not None:
            obj = self.first(subject, "OBJ")
            out["object"] = obj.value if obj else None
            fld = self.first(subject, "FIELD")
            if fld:
                out["field"] = fld.value
        return out

    def build(self, tree: Tree) -> Rule | None:
        trigger_node = self.sub(tree, "trigger")
        actions_node = self.sub(tree, "actions")
        assert trigger_node is not None and actions_node is not None
        clauses = [self.clause(c) for c in self.subs(trigger_node, "clause")]
        objects = [c["object"] for c in clauses if c.get("object")]
        trigger: Any = None
        conditions: list[Any] = []
        event_filters: list[EventFilter] = []
        record_object: str | None = objects[0] if objects else None

        for c in clauses:
            kind, body = c["kind"], c["node"]
            if kind == "stay":
                seconds = (self.minutes(self.sub(body, "dur")) or 0) * 60
                scope_node = self.sub(body, "scope")
                scope = None if scope_node is None else ("per_visit" if self.first(scope_node, "PER_VISIT")
                                                          else "total")
                shown = f"{seconds / 60:g}"
                scope = scope or self.ask(
                    "duration_scope", f"Is the {shown} minutes per visit (one page view that long) or in total "
                    "(all of the customer's visits added up)?",
                    f"“{shown}分钟”是指单次访问停留这么久,还是多次访问累计停留这么久?",
                    [("per_visit", "per visit / 单次"), ("total", "in total / 累计")])
                op = self.cmp(body, "ge")
                window = self.window(body) or DEFAULT_WINDOW_MIN
                if scope == "per_visit":
                    threshold = int(seconds) + (1 if op == "gt" else 0)
                    flt = EventFilter(min_duration_s=threshold)
                    conditions.append(AggregateCondition(fn="count", filter=flt, window_minutes=window, op="ge",
                                                         value=1))
                    event_filters.append(EventFilter())
                elif scope == "total":
                    conditions.append(AggregateCondition(fn="sum_duration", filter=EventFilter(),
                                                         window_minutes=window, op=op, value=seconds))  # type: ignore[arg-type]
                    event_filters.append(EventFilter())
            elif kind == "counted":
                flt = self.evfilter(self.sub(body, "evphrase"))  # type: ignore[arg-type]
                op, n = self.count(self.sub(body, "count"))
                conditions.append(AggregateCondition(fn="count", filter=flt, op=op,  # type: ignore[arg-type]
                                                     window_minutes=self.window(body) or DEFAULT_WINDOW_MIN, value=n))
                event_filters.append(flt)
            elif kind == "single":
                flt = self.evfilter(self.sub(body, "evphrase"))  # type: ignore[arg-type]
                window = self.window(body)
                if not event_filters and trigger is None and window is None:
                    trigger = EventTrigger(filter=flt)
                else:
                    conditions.append(AggregateCondition(fn="count", filter=flt, op="ge", value=1,
                                                         window_minutes=window or DEFAULT_WINDOW_MIN))
                event_filters.append(flt)
            elif kind == "sequence":
                steps = [self.evfilter(self.sub(s, "evphrase")) for s in self.subs(body, "step")]  # type: ignore[arg-type]
                within = self.window(body) or DEFAULT_WINDOW_MIN
                conditions.append(SequenceCondition(steps=steps, within_minutes=within))
                event_filters.append(steps[-1])
            elif kind == "changed":
                value = self.first(body, "VALUE")
                assert value is not None
                fld, _, val = str(value.value).partition("=")
                field_tok = self.first(body, "FIELD")
                fld = field_tok.value if field_tok else c.get("field") or fld
                record_object = record_object or _FIELD_OBJECT.get(fld, "lead" if fld == "status" else None)
                trigger = RecordTrigger(object=record_object or "opportunity", on="field_changed",  # type: ignore[arg-type]
                                        field=fld, to_value=val)
            elif kind == "created":
                obj = self.first(body, "OBJ")
                assert obj is not None
                record_object = obj.value
                trigger = RecordTrigger(object=obj.value, on="created")
            elif kind in ("before", "before_zh", "after", "after_zh"):
                minutes = self.minutes(self.sub(body, "dur")) or 0
                date_tok = self.leaves(self.sub(body, "datefield"))[0]  # type: ignore[arg-type]
                obj, date_field = ("case", "sla_due") if date_tok.type == "SLA" else str(date_tok.value).split(".")
                record_object = obj
                offset = -int(minutes) if kind.startswith("before") else int(minutes)
                trigger = ScheduleTrigger(object=obj, date_field=date_field, offset_minutes=offset)  # type: ignore[arg-type]
                if self.first(body, "UNRESOLVED"):
                    conditions.append(FieldCondition(field="status", op="ne", value="closed"))
            elif kind == "inactive":
                minutes = self.minutes(self.sub(body, "dur")) or 1440
                conditions.append(InactivityCondition(days=max(1, math.ceil(minutes / 1440))))
                if trigger is None:
                    trigger = "daily"
            elif kind == "compare":
                field_tok = self.first(body, "FIELD")
                fld = field_tok.value if field_tok else c.get("field") or "amount"
                money = self.sub(body, "money")
                num = self.first(money if money is not None else body, "NUM")
                assert num is not None
                value = float(num.value)
                if fld.startswith("score:"):  # a computed score (customers/), not a field of the record
                    kind_ = fld.removeprefix("score:")
                    record_object = record_object or ("lead" if kind_ == "lead" else
                                                      "opportunity" if kind_ == "win" else "account")
                    conditions.append(ScoreCondition(score=kind_, op=self.cmp(body, "gt"),  # type: ignore[arg-type]
                                                     value=value))
                    continue
                record_object = record_object or _FIELD_OBJECT.get(fld)
                conditions.append(FieldCondition(field=fld, op=self.cmp(body, "gt"),  # type: ignore[arg-type]
                                                 value=int(value) if value.is_integer() else value))
                currency = self.first(body, "CURRENCY")
                if currency is not None:
                    conditions.append(FieldCondition(field="currency", op="eq", value=currency.value))
            elif kind == "is_value":
                value = self.first(body, "VALUE")
                assert value is not None
                fld, _, val = str(value.value).partition("=")
                field_tok = self.first(body, "FIELD")
                fld = field_tok.value if field_tok else fld
                if fld in ("segment", "health"):  # an RFM segment or a health band, of the record's account
                    record_object = record_object or "account"
                    conditions.append(SegmentCondition(of="rfm" if fld == "segment" else "health", label=val))
                    continue
                record_object = record_object or _FIELD_OBJECT.get(fld)
                conditions.append(FieldCondition(field=fld, op="eq", value=val))
            elif kind == "consent":
                conditions.append(FieldCondition(field="custom.consent", op="eq", value=True))
            elif kind == "subscribed":
                conditions.append(FieldCondition(field="custom.opted_out", op="ne", value=True))
            elif kind == "identity":
                record_object = record_object or "lead"
                conditions.append(IdentityCondition())
            elif kind == "unresolved":
                record_object = record_object or "case"
                conditions.append(FieldCondition(field="status", op="ne", value="closed"))
            else:  # pragma: no cover - the grammar has no other clause kinds
                raise _NoParse(kind)

        if trigger == "daily":
            trigger = ScheduleTrigger(object=record_object or "opportunity")  # type: ignore[arg-type]
        if trigger is None:
            if not event_filters:
                raise _NoParse("no trigger")
            if any(not f.types for f in event_filters) or any(f.page_prefix for f in event_filters):
                trigger = EventTrigger(filter=EventFilter())
            else:
                trigger = EventTrigger(filter=EventFilter(types=sorted({t for f in event_filters for t in f.types})))
        actions = self.actions(actions_node, getattr(trigger, "object", None))
        if self.questions:
            return None
        return Rule(name=self.text.strip()[:200], language=self.lang, trigger=trigger,  # type: ignore[arg-type]
                    conditions=conditions, actions=actions,
                    approval={"auto_approve": "AUTO" in self.types(tree) and "MANUAL" not in self.types(tree)})

    # actions
    def target(self, node: Tree, kind: str) -> dict[str, Any]:
        """Pool, queue or owner named by an ``assign`` target."""
        recipient = self.sub(node, "recipient")
        if recipient is not None:
            return {"owner": self.first(recipient, "RECIPIENT").value}  # type: ignore[union-attr]
        name_node = self.sub(node, "name")
        words = self.leaves(name_node) if name_node is not None else []
        name = ("" if self.lang == "zh" else " ").join(t.text for t in words)
        is_queue = "QUEUE" in self.types(node)
        known = [t.value for t in words if t.type in ("POOLNAME", "QUEUENAME")]
        key = known[0] if known else ((self.catalog.queue(name) if is_queue else self.catalog.pool(name))
                                      if name else None)
        if key is not None:
            return {"queue" if is_queue else "pool": key}
        items = self.catalog.queues if is_queue else self.catalog.pools
        what_en, what_zh = ("queue", "队列") if is_queue else ("pool", "线索池")
        answer = self.ask(
            "queue" if is_queue else "pool",
            f"There is no {what_en} called '{name}'. Which {what_en} should it go to?" if name else
            f"Which {what_en} should it go to?",
            f"系统中没有名为“{name}”的{what_zh}。应分配到哪个{what_zh}?" if name else f"应分配到哪个{what_zh}?",
            [(d.key, d.label) for d in items])
        return {"queue" if is_queue else "pool": answer}

    def actions(self, node: Tree, trigger_object: str | None) -> list[Any]:
        out: list[Any] = []
        for action in self.subs(node, "action"):
            act = next(c for c in action.children if isinstance(c, Tree))
            kind = act.data
            bulk = self.first(act, "BULK") is not None
            if kind in ("create_lead", "create_contact"):
                obj = self.first(act, "OBJ")
                high = self.first(act, "LEAD_HIGH")
                if obj is not None and obj.value == "contact":
                    out.append(CreateContact(bulk=bulk))
                    continue
                if obj is None or obj.value != "lead":
                    raise _NoParse(f"create {obj.value if obj else '?'}")
                pool = "general"
                assign_to = self.sub(act, "assign_to") or act
                if self.sub(assign_to, "target") is not None:
                    pool = self.target(self.sub(assign_to, "target"), "pool").get("pool") or "general"  # type: ignore[arg-type]
                out.append(CreateLead(pool=pool, score=high.value if high else None, bulk=bulk))
            elif kind == "create_task":
                recipient = self.sub(act, "recipient")
                who = self.first(recipient, "RECIPIENT").value if recipient else "owner"  # type: ignore[union-attr]
                out.append(CreateTask(assignee=who, subject="跟进" if self.lang == "zh" else "Follow up", bulk=bulk))
            elif kind == "assign":
                target = self.target(self.sub(act, "target"), "pool")  # type: ignore[arg-type]
                if "pool" in target and out and isinstance(out[-1], CreateLead) and out[-1].pool == "general":
                    out[-1] = out[-1].model_copy(update={"pool": target["pool"] or "general"})
                else:
                    out.append(Assign(bulk=bulk, **target))
            elif kind == "notify":
                out.append(Notify(recipient=self.first(act, "RECIPIENT").value, bulk=bulk))  # type: ignore[union-attr]
            elif kind == "escalate":
                recipient = self.first(act, "RECIPIENT")
                out.append(Escalate(to=recipient.value if recipient else "support_lead", bulk=bulk))
            elif kind == "set_field":
                value = self.first(act, "VALUE")
                fld, _, val = str(value.value).partition("=")  # type: ignore[union-attr]
                field_tok = self.first(act, "FIELD")
                out.append(UpdateField(field=field_tok.value if field_tok else fld, value=val, bulk=bulk))
            elif kind == "send":
                channels = {t.value for t in self.leaves(act) if t.type == "SEND"}
                out.append(SendMessage(channel="sms" if "sms" in channels else "email", bulk=bulk))
            elif kind == "export":
                obj = self.first(act, "OBJ")
                fields = sorted({t.value for t in self.leaves(act) if t.type == "PERSONAL"})
                url = self.sub(act, "url")
                out.append(Export(object=obj.value if obj else "contact", fields=fields, bulk=bulk,
                                  destination=self.leaves(url)[0].text if url is not None else ""))
            elif kind == "delete":
                obj = self.first(act, "OBJ")
                out.append(Delete(object=obj.value if obj else (trigger_object or "lead"), bulk=bulk))
            else:  # pragma: no cover
                raise _NoParse(kind)
        return out


def parse(text: str, *, catalog: Catalog | None = None, clarifications: dict[str, str] | None = None) -> ParseResult:
    """Parse ``text`` with the grammar. ``error`` is set when the grammar does not cover it (the model's turn)."""
    catalog = catalog or file_catalog()
    toks = tokenize(text, catalog)
    if not toks:
        return ParseResult(error="empty rule text", tokens=toks)
    try:
        tree = _grammar().parse(toks)  # type: ignore[arg-type]
    except LarkError as exc:
        return ParseResult(error=f"the grammar does not cover this text ({type(exc).__name__})", tokens=toks)
    interp = _Interp(toks, text, catalog, dict(clarifications or {}))
    try:
        rule = interp.build(tree)
    except (_NoParse, ValidationError, StopIteration, AssertionError) as exc:
        return ParseResult(error=f"the grammar could not build a rule ({exc})"[:300], tokens=toks)
    return ParseResult(rule=rule, questions=interp.questions, tokens=toks)
