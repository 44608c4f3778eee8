"""The BFCL answer format, read by our own code: function docs as OpenAI tools, and an AST checker of calls.

BFCL describes functions in its own dialect of JSON schema (``dict`` for objects, ``float`` for numbers,
``tuple`` for arrays, ``any``) and names like ``math.factorial``, which OpenAI-style tool names do not allow.
Its possible answers give, per parameter, the values a right call may pass; ``""`` among them means the
parameter may be left out. We do not install ``bfcl-eval`` (its pins conflict with ours), so this is our
reading of that format: a call is right when it names the function, passes every required parameter and no
unknown one, and each value is among the possible answers (strings compared after BFCL-style normalisation,
an int accepted for a float, lists and dicts element by element).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

TYPES = {"dict": "object", "float": "number", "tuple": "array", "integer": "integer", "string": "string",
         "boolean": "boolean", "array": "array", "object": "object", "number": "number"}
# JSON-schema keywords kept for the model; BFCL's own ("optional") and formats a grammar may not know are dropped.
KEPT = ("description", "enum", "default", "minimum", "maximum", "minItems", "maxItems")
# BFCL's "any" as a list of types: a schema with no type at all is one llama.cpp's grammar converter rejects.
ANY = ["string", "number", "integer", "boolean", "array", "object"]
_PUNCTUATION = re.compile(r"[\s,./\-_*^]")


def tool_name(name: str) -> str:
    """A valid tool name for a BFCL function name (``math.factorial`` -> ``math_factorial``)."""
    return re.sub(r"[^A-Za-z0-9_-]", "_", name)[:64]


def json_schema(schema: dict[str, Any]) -> dict[str, Any]:
    """A BFCL parameter schema as standard JSON schema (recursively)."""
    out: dict[str, Any] = {k: schema[k] for k in KEPT if k in schema}
    kind = schema.get("type")
    if kind:
        out["type"] = ANY if kind == "any" else TYPES.get(kind, kind)
    if "properties" in schema:
        out["properties"] = {k: json_schema(v) for k, v in schema["properties"].items()}
        required = [r for r in schema.get("required", []) if r in schema["properties"]]
        if required:
            out["required"] = required
    if "items" in schema:
        out["items"] = json_schema(schema["items"])
    elif out.get("type") == "array":
        out["items"] = {"type": ANY}
    if out.get("type") == "object" and "properties" not in out:
        out["properties"] = {}
    return out


def openai_tool(function: dict[str, Any]) -> dict[str, Any]:
    """A BFCL function doc as an OpenAI tool (what ``bind_tools`` takes)."""
    params = json_schema({**function.get("parameters", {}), "type": "dict"})
    return {"type": "function", "function": {"name": tool_name(function["name"]),
                                             "description": function.get("description", ""), "parameters": params}}


def normalise(text: str) -> str:
    """BFCL-style string comparison: no spaces or ``,./-_*^``, lower case, one kind of quote."""
    return _PUNCTUATION.sub("", text).lower().replace("'", '"')


def _kind(schema: dict[str, Any] | None, option: Any) -> str:
    kind = str((schema or {}).get("type") or "")
    if kind and kind != "any":
        return TYPES.get(kind, kind)
    if isinstance(option, bool):
        return "boolean"
    if isinstance(option, int):
        return "integer"
    return {float: "number", str: "string", list: "array", dict: "object"}.get(type(option), "any")


def same(value: Any, option: Any, schema: dict[str, Any] | None = None) -> bool:
    """Whether ``value`` is the possible answer ``option`` for a parameter of ``schema`` (BFCL's form)."""
    kind = _kind(schema, option)
    if kind == "boolean":
        return isinstance(value, bool) and value is option
    if kind == "integer":
        return isinstance(value, int) and not isinstance(value, bool) and value == option
    if kind == "number":  # an int is a right float ("5" for 5.0), as in Python
        return isinstance(value, int | float) and not isinstance(value, bool) and float(value) == float(option)
    if kind == "string":
        return isinstance(value, str) and isinstance(option, str) and normalise(value) == normalise(option)
    if kind == "array":
        items = (schema or {}).get("items")
        return (isinstance(value, list) and isinstance(option, list) and len(value) == len(option)
                and all(same(v, o, items) for v, o in zip(value, option, strict=True)))
    if kind == "object" and isinstance(option, dict):
        return isinstance(value, dict) and _dict_mismatch(value, option, (schema or {}).get("properties")) is None
    if isinstance(value, str) and isinstance(option, str):
        return normalise(value) == normalise(option)
    return bool(value == option)


def _dict_mismatch(value: dict[str, Any], options: dict[str, list[Any]],
                   properties: dict[str, Any] | None) -> str | None:
    """A nested dict against BFCL's ``{key: [possible values]}``: no unknown keys, missing only where optional."""
    for key in value:
        if key not in options:
            return f"unexpected key {key!r}"
    for key, allowed in options.items():
        allowed = allowed if isinstance(allowed, list) else [allowed]
        if key not in value:
            if "" not in allowed:
                return f"missing key {key!r}"
            continue
        if not any(same(value[key], o, (properties or {}).get(key)) for o in allowed if o != ""):
            return f"{key}={value[key]!r} not among {allowed!r}"
    return None


def call_mismatch(name: str, args: dict[str, Any], answer: dict[str, dict[str, list[Any]]],
                  functions: list[dict[str, Any]]) -> str | None:
    """Why a call (BFCL function ``name``, ``args``) is not the answer ``{function: {param: [values]}}``; None if right.

    Checks, in order: the function, every required parameter present, no parameter the function or the answer
    does not have, every value among the possible answers (a parameter whose answers include ``""`` may be
    left out).
    """
    (want, params), = answer.items()
    if name != want:
        return f"called {name}, expected {want}"
    doc = next((f for f in functions if f["name"] == want), None)
    schema = (doc or {}).get("parameters", {})
    properties = schema.get("properties", {})
    for required in schema.get("required", []):
        if required in properties and required not in args:  # as told to the model: no undocumented ones
            return f"missing required parameter {required!r}"
    for key in args:
        if key not in properties or key not in params:
            return f"unexpected parameter {key!r}"
    for key, allowed in params.items():
        if key not in args:
            if "" not in allowed:
                return f"missing parameter {key!r}"
            continue
        if not any(same(args[key], o, properties.get(key)) for o in allowed if o != ""):
            return f"{key}={args[key]!r} not among {allowed!r}"
    return None


def first_answer(answer: dict[str, dict[str, list[Any]]], required: Sequence[str] = ()) -> tuple[str, dict[str, Any]]:
    """The call made of each parameter's first possible value (the fake's reply).

    A parameter whose first possible value is ``""`` is left out, unless the function requires it (a few BFCL
    answers call a required parameter optional; BFCL's checker, like ours, still wants it).
    """
    (name, params), = answer.items()
    return name, _first(params, required)


def _first(params: dict[str, list[Any]], required: Sequence[str] = ()) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, allowed in params.items():
        options = allowed if isinstance(allowed, list) else [allowed]
        value = next((o for o in options if o != ""), "") if key in required else (options or [""])[0]
        if value == "":
            continue
        out[key] = _concrete(value)
    return out


def _concrete(value: Any) -> Any:
    if isinstance(value, dict):  # nested answers are {key: [possible values]} too
        return _first(value)
    if isinstance(value, list):
        return [_concrete(v) for v in value]
    return value
