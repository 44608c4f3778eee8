"""Filters a list request states plainly, read from the rep's own words when the model's call left them out.

A small model often drops a filter from a request that names three ("my deals over 500k with no activity for 30
days"), and then answers as if it had applied it. "My" and a bounded amount are deterministic to read, so code reads
them: a list call without an owner gets ``me`` when the request says "my"/我的 (not "my team"/我们), and a deal list
without amount bounds gets the one amount the request bounds with "over"/超过/以上 or "under"/不到/以下. A call that
puts the request's one bound on the wrong side ("低于20万" as ``amount_min``) has it moved. What code added or moved
is listed in the tool's ``filters`` as ``from_request``, so the answer and its "why?" show it.

A stage works the same way: when the request names exactly one stage ("to negotiation", 推进到初步接触), a list
filter or a stage change the call gives differently (the model mixing up 初步接触 and 资格确认) takes the rep's.
So does an activity kind in a request for the newest ("the latest note", 最近的备注): an account's timeline, or a
search with nothing to search for, shows only that kind. "Check the notes: which system do they use?" is not
narrowed: the answer may sit in a call or an email.
"""

from __future__ import annotations

import re

from agents.assistant.money import parse_amount
from config.errors import CrmindError
from crm.fields import CHOICES, STAGE_LABELS_ZH

# "my deals", and the rep as the one who has them: "do I own", "I have", 我现在一共有多少个商机, 我在谈判阶段的商机
_MINE = re.compile(r"\b(?:my|mine)\b|\b(?:do|did) I (?:own|have|hold|manage)\b"
                   r"|\b(?:deals?|opportunities|leads?|cases?|accounts?) (?:that )?I (?:own|have|hold|manage)\b"
                   r"|我的|我名下|我手上|我负责|我(?:现在|目前|这边|手里)?(?:一共|总共)?(?:有|拥有)(?:多少|几)"
                   r"|我在[^，。？?]{1,12}的(?:商机|单子|线索|客户|工单)", re.IGNORECASE)
_NOT_MINE = re.compile(r"\bmy team\b|\bour\b|\bteam'?s\b|我们|团队|全组|大家", re.IGNORECASE)
# An amount needs a unit or a currency sign, so "30 days" and "ESS-200" are not amounts.
_AMOUNT = (r"(?:[$¥￥€]\s?\d[\d,]*(?:\.\d+)?\s*(?:k|m|million)?|\d[\d,]*(?:\.\d+)?\s*"
           r"(?:k\b|m\b|million\b|thousand\b|万|亿|w\b))")
_UNDER = r"(?:\b(?:under|below|less than|smaller than|at most|up to)\s*|不到|低于|小于|少于|不超过)"
_OVER = r"(?:\b(?:over|above|more than|greater than|bigger than|at least|exceeding)\s*|超过|大于|高于|不少于|不低于)"
_MAX = re.compile(rf"{_UNDER}({_AMOUNT})|({_AMOUNT})\s*(?:以下|以内)", re.IGNORECASE)
_MIN = re.compile(rf"{_OVER}({_AMOUNT})|({_AMOUNT})\s*(?:以上|起)", re.IGNORECASE)


def says_mine(message: str) -> bool:
    """The request is about the rep's own records ("my deals", 我名下的商机), not the team's."""
    return bool(_MINE.search(message)) and not _NOT_MINE.search(message)


def _one(pattern: re.Pattern[str], text: str) -> str | None:
    found = [next(g for g in m.groups() if g) for m in pattern.finditer(text)]
    return found[0].strip() if len(found) == 1 else None


def same_amount(a: object, b: object) -> bool:
    """Whether two amounts as written ("200000", "20万", "200k") are the same number."""
    try:
        return parse_amount(a)[0] == parse_amount(b)[0]  # type: ignore[arg-type]
    except CrmindError:
        return False


def amount_bounds(message: str) -> tuple[str | None, str | None]:
    """(lower, upper): the request's one amount stated as a lower bound, and its one stated as an upper bound."""
    upper = _one(_MAX, message)
    rest = _MAX.sub(" ", message)  # "不超过" holds "超过": take the upper bounds out before reading lower ones
    return _one(_MIN, rest), upper


# How reps name each stage: the value, its words, the CRM's Chinese label, and common Chinese variants.
_STAGE_EXTRA: dict[str, tuple[str, ...]] = {
    "qualification": ("qualifying", "资格审查", "资格阶段"), "needs_analysis": ("discovery",),
    "proposal": ("报价阶段",), "negotiation": ("negotiating", "negotiations", "谈判"),
    "closed_won": ("won", "已成交"), "closed_lost": ("lost", "丢单"),
}
_STAGES = {stage: re.compile("|".join(
    [rf"\b{re.escape(form)}\b(?!')" for form in dict.fromkeys((stage, stage.replace("_", " ")))]
    + [rf"\b{re.escape(form)}\b(?!')" if form.isascii() else re.escape(form)
       for form in (*_STAGE_EXTRA.get(stage, ()), STAGE_LABELS_ZH[stage])]), re.IGNORECASE)
    for stage in CHOICES[("opportunity", "stage")]}


def stage_named(message: str) -> str | None:
    """The one stage the request names ("move it to negotiation", 推进到初步接触阶段); None for none or several."""
    named = [stage for stage, pattern in _STAGES.items() if pattern.search(message)]
    return named[0] if len(named) == 1 else None


# How reps name each kind of activity. "call" as a verb ("call me back") only ever narrows a read.
_KINDS = {kind: re.compile(pattern, re.IGNORECASE) for kind, pattern in {
    "note": r"\bnotes?\b|备注|笔记|纪要",
    "call": r"\b(?:phone )?calls?\b|电话|通话",
    "email": r"\be-?mails?\b|邮件",
    "meeting": r"\bmeetings?\b|会议|会面|开会",
    "task": r"\btasks?\b|\bto-?dos?\b|待办|任务",
}.items()}


_NEWEST = re.compile(r"\b(?:latest|newest|most recent|recent|last)\b|最新|最近|上次|上一次|最后", re.IGNORECASE)


def activity_kind_named(message: str) -> str | None:
    """The one kind of activity a request for the newest names ("the latest note", 最近的电话); None otherwise."""
    if not _NEWEST.search(message):
        return None
    named = [kind for kind, pattern in _KINDS.items() if pattern.search(message)]
    return named[0] if len(named) == 1 else None
