"""Ask which record: a change request that names no record, and led to no proposal, gets a question back.

"Move the deal to negotiation" names no deal. Guessing one would put a change on a record the rep never chose, so
when such a turn ends with nothing proposed and the model's answer asks nothing, crmind asks: which record, with
the rep's own most recently updated records of that kind to pick from, each cited. What kind of record is meant
comes from the rep's words ("deal", 客户...) or else from the change asked for (a stage is an opportunity's).

A message names a record when it holds a readable record's whole name, or a word that is part of one and is not
one of the words every change request uses ("move", "stage", "next week", 商机, 阶段...): "ESS-200" names the deal
"ESS-200 rollout", "the deal" names nothing.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from functools import lru_cache
from typing import Any

from langchain_core.messages import AIMessage, AnyMessage, HumanMessage, ToolMessage
from sqlalchemy.orm import Session

from agents.assistant.fallback import record_label
from agents.assistant.grounding import NAMED_TYPES, named_records
from agents.assistant.resolve import NAME_FIELD
from agents.assistant.state import message_text
from agents.assistant.tools import compact
from crm.access import READABLE, Principal, model_for, readable
from crm.fields import CHOICES
from crm.proposals import CLOSE_FIELDS, CLOSED_VALUES
from crm.queries import escape_like
from retrieval.sparse import tokenize

MAX_CHOICES = 5
MAX_QUESTION = 300  # characters: a question back to the rep is short
QUESTION_MARK = re.compile(r"[?？]")
# The rep's word for the record, first match wins ("the deal's contact" is about a deal).
_NOUNS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("opportunity", re.compile(r"\b(?:deals?|opportunit(?:y|ies)|opps?)\b|商机|单子|项目", re.IGNORECASE)),
    ("case", re.compile(r"\b(?:cases?|tickets?)\b|工单|案例|投诉", re.IGNORECASE)),
    ("lead", re.compile(r"\bleads?\b|线索", re.IGNORECASE)),
    ("contact", re.compile(r"\bcontacts?\b|联系人", re.IGNORECASE)),
    ("account", re.compile(r"\b(?:customers?|accounts?|clients?|compan(?:y|ies))\b|客户|公司", re.IGNORECASE)),
)
# The record a write tool changes when the rep's words do not say (create tools change none: nothing to ask).
TOOL_TARGET = {"update_stage": "opportunity", "update_record": "opportunity", "log_activity": "account",
               "schedule_follow_up": "account", "draft_email": "contact"}
WORD = {"en": {"opportunity": "deal", "case": "case", "lead": "lead", "contact": "contact", "account": "customer"},
        "zh": {"opportunity": "商机", "case": "工单", "lead": "线索", "contact": "联系人", "account": "客户"}}
ASK = {
    "en": "Which {word} do you mean? Tell me its name (or its reference, like {obj}:12) and I'll propose the change "
          "for your approval.",
    "zh": "您指的是哪个{word}？请告诉我名称（或编号，如 {obj}:12），我会提出修改请您确认。",
}
# Words of change requests themselves, not names (stemmed by ``tokenize`` like the message is).
REQUEST_WORDS = (
    "please can could you move update change set mark advance reopen edit modify log jot record add call called "
    "email emailed meeting met spoke talked note notes schedule follow follow-up up remind reminder book draft write "
    "compose create new deal deals opportunity opportunities opp customer customers account accounts client company "
    "contact contacts lead leads case cases ticket stage status next previous last this that close closing closed date "
    "amount value probability priority owner today tomorrow yesterday week month day monday tuesday wednesday "
    "thursday friday saturday sunday won lost discussed about pricing price demo "
    "把 那个 这个 商机 单子 项目 客户 公司 联系人 线索 工单 阶段 状态 推进 下一 下个 上一 移到 改成 改为 改一下 "
    "修改 更新 成交 日期 金额 记录 一下 通话 电话 打电话 会议 备注 跟进 安排 提醒 下周 本周 明天 今天 昨天 周一 周二 "
    "周三 周四 周五 帮我 帮 请 和 起草 邮件 新建 创建 赢单 输单 关闭")


@lru_cache(maxsize=1)
def _request_terms() -> frozenset[str]:
    values = " ".join(str(v) for field_values in CHOICES.values() for v in field_values)
    return frozenset(tokenize(f"{REQUEST_WORDS} {values}"))


def names_a_record(session: Session, principal: Principal, message: str) -> bool:
    """Whether ``message`` holds a readable record's name, or a distinctive word of one (see the module doc)."""
    if named_records(session, principal, message):
        return True
    common = _request_terms()
    terms = [t for t in dict.fromkeys(tokenize(message)) if len(t) >= 3 or (len(t) >= 2 and not t.isascii())]
    for term in (t for t in terms if t not in common):
        for obj in NAMED_TYPES:
            if obj not in READABLE[principal.role]:
                continue
            column = getattr(model_for(obj), NAME_FIELD[obj])
            hit = readable(principal, obj).where(column.ilike(f"%{escape_like(term)}%", escape="\\")).limit(1)
            if session.scalars(hit).first() is not None:
                return True
    return False


RECENT = {"en": "Your most recently updated ones:", "zh": "您最近更新的{word}："}


def asks(text: str) -> bool:
    """Whether the answer asks the rep something."""
    return bool(QUESTION_MARK.search(text))


def asks_back(text: str) -> bool:
    """Whether the reply is one short question back to the rep ("Which account do you mean?"), not an answer.

    A plan ("To answer this, I'll need to ... ?") or a made-up list of questions is not asking the rep.
    """
    text = text.strip()
    return len(text) <= MAX_QUESTION and len(QUESTION_MARK.findall(text)) == 1 and text[-1] in "?？"


def target_kind(message: str, allowed: list[str]) -> str | None:
    """The kind of record the change is for; None when the allowed changes target no existing record."""
    targets = [TOOL_TARGET[t] for t in allowed if t in TOOL_TARGET]
    if not targets:
        return None
    said = next((obj for obj, pattern in _NOUNS if pattern.search(message)), None)
    return said or targets[0]


def choices(session: Session, principal: Principal, obj: str) -> list[dict[str, Any]]:
    """The rep's own open records of ``obj``, most recently updated first, as the tools show them."""
    if obj not in READABLE[principal.role]:
        return []
    model: Any = model_for(obj)
    stmt = readable(principal, obj).where(model.owner_id == principal.user_id)
    if obj in CLOSE_FIELDS:
        stmt = stmt.where(getattr(model, CLOSE_FIELDS[obj]).not_in(CLOSED_VALUES[obj]))
    rows = session.scalars(stmt.order_by(model.updated_at.desc(), model.id.desc()).limit(MAX_CHOICES))
    return [compact(principal, obj, r) for r in rows]


def question(obj: str, language: str, found: list[dict[str, Any]]) -> str:
    """The clarifying question, in the rep's language, with the records to pick from (each cited)."""
    lang = language if language in ASK else "en"
    word = WORD[lang][obj]
    text = ASK[lang].format(word=word, obj=obj)
    if found:
        lines = [f"- {record_label(r) or r['ref']} [{r['ref']}]" for r in found]
        text += "\n\n" + RECENT[lang].format(word=word) + "\n" + "\n".join(lines)
    return text


APPROVAL_DATA = '<data source="approval">'  # the approve step's report of a proposal the rep decided
_RECORD_REF = re.compile(r"\b(?:account|contact|lead|opportunity|case|activity):\d+\b")


def shown_refs(messages: Sequence[AnyMessage]) -> frozenset[str]:
    """Records the rep has seen or written in this conversation: in the rep's messages and the assistant's answers.

    Tool results the rep never saw do not count; a proposal's record does (the rep saw its card). "Move it to
    negotiation" after an answer citing [opportunity:12], or "the first one" after crmind's question listing
    choices, may change that record.
    """
    seen = (message_text(m) for m in messages if isinstance(m, HumanMessage) or (
        isinstance(m, AIMessage) and not m.tool_calls) or (
        isinstance(m, ToolMessage) and message_text(m).startswith(APPROVAL_DATA)))
    return frozenset(r for text in seen for r in _RECORD_REF.findall(text))
