"""Is a tool call right? The tools eval's argument matching, against the assistant's real argument models.

An expected argument lists only what the rep's request pins down, so a right call may carry more. Values are
compared the way the tool itself reads them: periods and dates resolved to days at the eval's fixed time,
amounts parsed as the tool parses "95k" or "12万", "me" as the rep. The rules are described at the top of
``eval/data/tool_requests.yaml``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from functools import cache
from typing import Any

from pydantic import ValidationError

from agents.assistant.dates import resolve_date, resolve_range
from agents.assistant.money import parse_amount
from agents.assistant.resolve import ME
from agents.assistant.tools import TOOLS_BY_NAME
from config.errors import CrmindError

# Arguments read as a period or one day by the tool, whatever the request's wording ("next month" = 下个月).
PERIOD_ARGS = frozenset({"close_date", "created", "period"})
DATE_ARGS = frozenset({"due", "when"})
AMOUNT_ARGS = frozenset({"amount_min", "amount_max"})
MARKERS = ("date", "period", "amount", "number")


@dataclass(frozen=True)
class Expected:
    """A right call: the tool and the arguments the request pins down (match specs, see the module doc)."""

    tool: str
    args: dict[str, Any]


@dataclass(frozen=True)
class Setting:
    """When and for whom the requests are made: relative dates and "me" are read against it."""

    now: datetime
    rep: str
    """As the turn note names the rep: ``Chen Jie (user:3)``."""

    @property
    def rep_names(self) -> frozenset[str]:
        """What names the rep as an owner: "me" and its kin, the rep's name, the rep's user reference."""
        name, _, actor = self.rep.partition(" (")
        return ME | {name.strip().lower(), actor.rstrip(")").strip().lower()}


@cache
def _field_shape(tool: str, name: str) -> tuple[bool, bool]:
    """Whether the argument is an enum, and whether it is an array, per the schema the model is given."""
    prop = TOOLS_BY_NAME[tool].args.model_json_schema()["properties"].get(name, {})
    branches = prop.get("anyOf", [prop])
    return any("enum" in b or "const" in b for b in branches), any(b.get("type") == "array" for b in branches)


def _resolved(read: Callable[[str], Any], value: Any) -> Any:
    try:
        return read(str(value))
    except (CrmindError, ValueError, TypeError):
        return None


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    try:
        return float(str(value).strip().rstrip("%"))
    except ValueError:
        return None


def _amount(value: Any) -> Decimal | None:
    def read(text: str) -> Decimal:
        return parse_amount(value if isinstance(value, int | float) else text)[0]

    amount: Decimal | None = _resolved(read, value)
    return amount


def _marked(kind: str, spec: Any, actual: Any, setting: Setting) -> bool:
    today = setting.now.date()
    if kind == "date":
        return bool(_resolved(lambda t: resolve_date(t, today), actual) == resolve_date(str(spec), today))
    if kind == "period":
        return bool(_resolved(lambda t: resolve_range(t, today), actual) == resolve_range(str(spec), today))
    if kind == "amount":
        return _amount(actual) == Decimal(str(spec))
    return _number(actual) == float(spec)


def _spellings(spec: Any) -> list[str]:
    return [str(s).casefold() for s in (spec if isinstance(spec, list) else [spec])]


def value_matches(tool: str, name: str, spec: Any, actual: Any, setting: Setting) -> bool:
    """Whether the argument ``name`` of a ``tool`` call, with value ``actual``, matches the expected ``spec``."""
    if actual is None:
        return False
    if isinstance(spec, dict):
        (kind, value), = spec.items()
        return _marked(kind, value, actual, setting)
    if name in DATE_ARGS:
        return _marked("date", spec, actual, setting)
    if name in PERIOD_ARGS and tool != "update_record":
        return _marked("period", spec, actual, setting)
    if name in AMOUNT_ARGS:
        return _marked("amount", spec, actual, setting)
    if isinstance(spec, bool):
        return actual is spec
    if isinstance(spec, int | float):
        return _number(actual) == float(spec)
    is_enum, is_array = _field_shape(tool, name)
    if is_array:  # every expected element in its own element of the list, nothing more
        if not isinstance(actual, list) or len(actual) != len(spec):
            return False
        left = [str(a).casefold() for a in actual]
        for want in spec:
            hit = next((i for i, a in enumerate(left) if str(want).casefold() in a), None)
            if hit is None:
                return False
            left.pop(hit)
        return True
    if is_enum:
        return str(actual) in [str(s) for s in (spec if isinstance(spec, list) else [spec])]
    text = str(actual).strip().casefold()
    if name == "owner" and "me" in _spellings(spec):
        return text in setting.rep_names
    return any(s in text for s in _spellings(spec))


def call_mismatch(expected: Expected, name: str, args: dict[str, Any], setting: Setting) -> str | None:
    """Why a call (``name``, ``args``) is not the ``expected`` call, or None when it is right.

    A call must first validate against the tool's argument model (the graph refuses it otherwise), then each
    expected argument must match; a key ``"a|b"`` passes when either argument does.
    """
    if name != expected.tool:
        return f"called {name}, expected {expected.tool}"
    try:
        parsed = TOOLS_BY_NAME[name].args.model_validate(args)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'arguments'}: {e['msg']}" for e in exc.errors()[:3])
        return f"invalid arguments: {problems}"
    for key, spec in expected.args.items():
        names = key.split("|")
        if not any(value_matches(name, n, spec, getattr(parsed, n, None), setting) for n in names):
            got = {n: args.get(n) for n in names}
            return f"{key}: got {got if len(names) > 1 else got[names[0]]!r}, expected {spec!r}"
    return None


def concrete(expected: Expected, filler: str) -> dict[str, Any]:
    """Arguments of a right call built from the specs (the fake model's answer), required text filled in."""
    args: dict[str, Any] = {}
    for key, spec in expected.args.items():
        name = key.split("|")[0]
        _, is_array = _field_shape(expected.tool, name)
        if isinstance(spec, dict):
            spec = next(iter(spec.values()))
        elif isinstance(spec, list) and not is_array:
            spec = spec[0]
        args[name] = spec if isinstance(spec, bool | int | float | list) else str(spec)
    model = TOOLS_BY_NAME[expected.tool].args
    for name, info in model.model_fields.items():
        if info.is_required() and name not in args:
            args[name] = filler[:200]
    if "value" in args:  # update_record's value is text in the schema
        args["value"] = str(args["value"])
    return args
