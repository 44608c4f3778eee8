"""Principal to an engine-neutral filter that mirrors ``crm.access.row_filter``, plus search filters.

The filter is a small tree (``All``/``Any`` of ``Match``/``Range``); each store translates it into its
own Qdrant types, so the permission rules are written once and travel inside the query.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, time

from config.objects import INDEXED_ORDER
from crm.access import READABLE, Principal


@dataclass(frozen=True)
class Match:
    """Payload ``key`` equals one of ``values``."""

    key: str
    values: tuple[int | str, ...]


@dataclass(frozen=True)
class Range:
    """Payload ``key`` (a number) within ``gte``..``lte``."""

    key: str
    gte: float | None = None
    lte: float | None = None


@dataclass(frozen=True)
class All:
    """Every condition holds."""

    conditions: tuple[Condition, ...]


@dataclass(frozen=True)
class AnyOf:
    """At least one condition holds; an empty ``AnyOf`` matches nothing."""

    conditions: tuple[Condition, ...]


Condition = Match | Range | All | AnyOf
NOTHING = AnyOf(())


def permission_filter(principal: Principal) -> Condition:
    """The chunks ``principal`` may read: the same rules as ``row_filter``, object type by object type."""
    readable = [obj for obj in INDEXED_ORDER if obj in READABLE[principal.role]]
    everyone = [obj for obj in readable if principal.role == "admin" or obj == "article"]
    scoped = [obj for obj in readable if obj not in everyone]
    teams = tuple(sorted(principal.team_ids))
    branches: list[Condition] = []
    if everyone:
        branches.append(Match("object_type", tuple(everyone)))
    if scoped:
        if principal.role == "rep":
            who: list[Condition] = [Match("owner_id", (principal.user_id,))]
            if teams:
                who.append(Match("team_id", teams))
            branches.append(All((Match("object_type", tuple(scoped)), AnyOf(tuple(who)))))
        elif teams:
            branches.append(All((Match("object_type", tuple(scoped)), Match("team_id", teams))))
    return AnyOf(tuple(branches))


def _epoch(value: date | datetime, end_of_day: bool = False) -> float:
    if not isinstance(value, datetime):
        value = datetime.combine(value, time.max if end_of_day else time.min)
    return value.timestamp()


def search_filter(principal: Principal, *, account_id: int | None = None,
                  object_types: Iterable[str] | None = None, date_from: date | datetime | None = None,
                  date_to: date | datetime | None = None) -> Condition:
    """Permissions plus the caller's account, object type and date range filters."""
    conditions: list[Condition] = [permission_filter(principal)]
    if account_id is not None:
        conditions.append(Match("account_id", (account_id,)))
    if object_types is not None:
        conditions.append(Match("object_type", tuple(object_types)))
    if date_from is not None or date_to is not None:
        conditions.append(Range("ts", gte=_epoch(date_from) if date_from else None,
                                lte=_epoch(date_to, end_of_day=True) if date_to else None))
    return All(tuple(conditions))


def matches(cond: Condition, payload: dict[str, object]) -> bool:
    """Evaluate a filter on one payload in Python (tests and the exact-search benchmark baseline)."""
    if isinstance(cond, Match):
        return payload.get(cond.key) in cond.values
    if isinstance(cond, Range):
        value = payload.get(cond.key)
        if not isinstance(value, int | float):
            return False
        return (cond.gte is None or value >= cond.gte) and (cond.lte is None or value <= cond.lte)
    if isinstance(cond, All):
        return all(matches(c, payload) for c in cond.conditions)
    return any(matches(c, payload) for c in cond.conditions)
