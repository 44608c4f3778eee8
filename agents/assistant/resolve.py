"""Record references and names resolved in code, with ambiguity errors the model can correct from.

"opportunity:12", "#12" and "12" name a record by id; anything else is a name, matched exactly, then as a
substring, among the records the caller may read. A record the caller may not read does not exist here either.
"""

from __future__ import annotations

import difflib
import re
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from agents.errors import ToolInputError
from config.objects import ref
from crm.access import READABLE, Principal, get_record, model_for, readable
from crm.errors import NotFound
from crm.models import User
from crm.queries import escape_like

# The column people call a record by.
NAME_FIELD: dict[str, str] = {"account": "name", "contact": "name", "lead": "name", "opportunity": "name",
                              "case": "subject", "activity": "subject", "article": "title"}
PLURAL_WORDS: dict[str, str] = {"account": "accounts", "contact": "contacts", "lead": "leads",
                                "opportunity": "opportunities", "case": "cases", "activity": "activities",
                                "article": "articles"}
_REF = re.compile(r"^(?:([a-z]+)\s*[:#]\s*|#)?(\d{1,10})$")
MAX_LISTED = 5


def label(obj: str, record: Any) -> str:
    """``Acme Energy [account:3]``: how a record is named in tool output and errors."""
    return f"{getattr(record, NAME_FIELD.get(obj, 'id'), '')} [{ref(obj, record.id)}]"


def parse_id(obj: str, text: str) -> int | None:
    """The id in ``"opportunity:12"``, ``"#12"`` or ``"12"``; None for a name. A ref of another type is an error."""
    m = _REF.match(text.strip().lower())
    if not m:
        return None
    kind = m.group(1)
    if kind and kind != obj:
        raise ToolInputError(f"'{text}' is a {kind} reference; this needs {_a(obj)} {obj}")
    return int(m.group(2))


def _a(word: str) -> str:
    return "an" if word[0] in "aeiou" else "a"


def resolve(session: Session, principal: Principal, obj: str, text: str) -> Any:
    """The one readable ``obj`` that ``text`` names; ``NotFound`` or an ambiguity error listing candidates."""
    text = text.strip()
    if not text:
        raise ToolInputError(f"name the {obj} (a name or a reference like {obj}:12)")
    ident = parse_id(obj, text)
    if ident is not None:
        return get_record(session, principal, obj, ident)
    model: Any = model_for(obj)
    column = getattr(model, NAME_FIELD[obj])
    base = readable(principal, obj)
    exact = list(session.scalars(base.where(func.lower(column) == text.lower()).order_by(model.id).limit(MAX_LISTED)))
    if len(exact) == 1:
        return exact[0]
    found = exact or list(session.scalars(
        base.where(column.ilike(f"%{escape_like(text)}%", escape="\\")).order_by(model.id).limit(MAX_LISTED + 1)))
    if len(found) == 1:
        return found[0]
    if found:
        more = " (and more)" if len(found) > MAX_LISTED else ""
        listed = ", ".join(label(obj, r) for r in found[:MAX_LISTED])
        raise ToolInputError(f"{len(found[:MAX_LISTED])}{more} {PLURAL_WORDS[obj]} match '{text}': {listed}. "
                             f"Call again with the reference of the one meant, e.g. {ref(obj, found[0].id)}.")
    close = similar(session, principal, obj, text)
    hint = f" Did you mean: {', '.join(label(obj, r) for r in close)}?" if close else _other_kind(session, principal,
                                                                                                 obj, text)
    raise NotFound(f"no {obj} named '{text}' found.{hint}")


def _other_kind(session: Session, principal: Principal, obj: str, text: str) -> str:
    """A hint when the name is another readable kind's (a deal's name passed as the account), else ""."""
    for other in ("opportunity", "account", "contact", "lead", "case"):
        if other == obj or other not in READABLE[principal.role]:
            continue
        column = getattr(model_for(other), NAME_FIELD[other])
        found = list(session.scalars(readable(principal, other).where(func.lower(column) == text.lower()).limit(2)))
        if len(found) == 1:
            return f" It is {_a(other)} {other}: {label(other, found[0])}."
    return ""


def similar(session: Session, principal: Principal, obj: str, text: str, limit: int = 3) -> list[Any]:
    """Readable records whose name shares a word with ``text``, best fuzzy match first (typos, word order)."""
    model: Any = model_for(obj)
    column = getattr(model, NAME_FIELD[obj])
    words = [w for w in re.split(r"\W+", text) if len(w) >= 3][:6]
    pieces = words or ([text[:2]] if text else [])
    if not pieces:
        return []
    cond = or_(*(column.ilike(f"%{escape_like(w)}%", escape="\\") for w in pieces))
    rows = list(session.scalars(readable(principal, obj).where(cond).limit(50)))
    scored = sorted(rows, key=lambda r: -difflib.SequenceMatcher(
        None, text.lower(), str(getattr(r, NAME_FIELD[obj])).lower()).ratio())
    return [r for r in scored if difflib.SequenceMatcher(
        None, text.lower(), str(getattr(r, NAME_FIELD[obj])).lower()).ratio() >= 0.4][:limit]


ME = frozenset({"me", "my", "mine", "myself", "i", "我", "我的", "自己"})


def resolve_owner(session: Session, principal: Principal, text: str) -> int:
    """A user id for "me"/我, an id, or a teammate's name (admins: anyone's)."""
    t = text.strip().lower()
    if t in ME:
        return principal.user_id
    stmt = select(User).where(User.active.is_(True))
    if principal.role != "admin":
        stmt = stmt.where(User.team_id.in_(list(principal.team_ids)) | (User.id == principal.user_id))
    if t.isdigit() or t.startswith("user:") and t[5:].isdigit():
        user = session.scalar(stmt.where(User.id == int(t.removeprefix("user:"))))
        if user is None:
            raise NotFound(f"user {text} not found")
        return user.id
    users = list(session.scalars(stmt.where(User.name.ilike(f"%{escape_like(text.strip())}%", escape="\\"))
                                 .order_by(User.id).limit(MAX_LISTED + 1)))
    exact = [u for u in users if u.name.lower() == t]
    if len(exact) == 1 or len(users) == 1:
        return (exact or users)[0].id
    if not users:
        raise NotFound(f"no teammate named '{text}' found")
    listed = ", ".join(f"{u.name} [user:{u.id}]" for u in users[:MAX_LISTED])
    raise ToolInputError(f"{len(users)} people match '{text}': {listed}. Call again with user:<id>.")
