"""Native tool calls in the ``<tool_call>`` (Hermes/Qwen) format: the grammar that constrains them, the parser.

The model's chat template renders the tools (OpenAI ``tools`` in the request) and the model answers either
with text or with a ``<tool_call>{"name": ..., "arguments": {...}}</tool_call>`` block. On llama.cpp the
answer is constrained by a GBNF grammar built from the tools' JSON schemas, so a call is always valid JSON
naming a real tool with arguments that fit its schema; :func:`parse_tool_calls` turns the text back into
LangChain tool calls. vLLM does both itself (``--tool-call-parser hermes``).
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from langchain_core.messages import InvalidToolCall, ToolCall

from inference.constrained import inline_refs, schema_to_grammar

OPEN, CLOSE = "<tool_call>", "</tool_call>"
ToolChoice = Literal["auto", "none", "required"] | str
"""``auto``: text or a call; ``none``: text only; ``required``: a call of any tool; else the tool's name."""

FENCE = "```"
_TAGGED = re.compile(re.escape(OPEN) + r"(.*?)(" + re.escape(CLOSE) + r"|$)", re.DOTALL)


def tool_name(tool: Mapping[str, Any]) -> str:
    """The name of an OpenAI-format tool (``{"type": "function", "function": {"name": ...}}``)."""
    return str(tool["function"]["name"])


def call_schema(tools: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """JSON schema of one ``{"name": ..., "arguments": {...}}`` object for one of ``tools`` (refs inlined)."""
    if not tools:
        raise ValueError("A tool call needs at least one tool.")
    names = [tool_name(t) for t in tools]
    if len(set(names)) != len(names):
        raise ValueError(f"Tool names must be unique: {names}")
    variants = []
    for tool in tools:
        params = _grammar_friendly(inline_refs(dict(tool["function"].get("parameters")
                                                    or {"type": "object", "properties": {}})))
        variants.append({"type": "object", "properties": {"name": {"const": tool_name(tool)}, "arguments": params},
                         "required": ["name", "arguments"]})
    return variants[0] if len(variants) == 1 else {"oneOf": variants}


# Lengths and counts above this are left to validation after decoding: in GBNF a bound such as maxLength 2000
# becomes that many nested optional repeats, and llama.cpp refuses grammars past its repetition limit.
GRAMMAR_MAX_BOUND = 64


def _grammar_friendly(node: Any) -> Any:
    """``node`` without large length or count bounds (the tool's own model still enforces them)."""
    if isinstance(node, list):
        return [_grammar_friendly(v) for v in node]
    if not isinstance(node, dict):
        return node
    out = {k: _grammar_friendly(v) for k, v in node.items()}
    for key in ("maxLength", "maxItems", "maxProperties"):
        if isinstance(out.get(key), int) and out[key] > GRAMMAR_MAX_BOUND:
            del out[key]
    return out


CALL_STARTS = "<`{"
"""The first visible character of every call framing; plain text starts with none of them (nor blank)."""
TEXT_RULE = "tool-text ::= [^<`{ \\t\\r\\n] [^\\x00]*"
# JSON may be laid out on lines, as the models like to write it (llama.cpp's converter allows one space).
SPACE_RULE = 'space ::= " "? | "\\n" (" " (" " (" " (" " (" " (" " (" " (" ")?)?)?)?)?)?)?)?'


def tool_call_grammar(
    tools: Sequence[Mapping[str, Any]], *, choice: ToolChoice = "auto", parallel: bool = False
) -> str:
    """GBNF for the answer: a tool call (several if ``parallel``), or text where ``choice`` allows.

    A call is ``{"name": ..., "arguments": ...}`` for a bound tool, with arguments valid for its schema,
    framed as the template asks (``<tool_call>``) or as models also write it (a ```json fence, bare). Text
    may not start with ``<``, a backtick, ``{`` or a blank: that keeps the branches apart at the first
    character, so a call can only be written through a call branch (and ``none`` admits no call at all).
    """
    if choice == "none":
        return f"root ::= tool-text\n{TEXT_RULE}"
    if choice not in ("auto", "required"):
        tools = [t for t in tools if tool_name(t) == choice]
        if not tools:
            raise ValueError(f"tool_choice names no bound tool: {choice!r}")
    # llama.cpp's converter names its top rule "root"; ours wraps it, so it becomes "tool-call-json".
    body = re.sub(r"^root ::=", "tool-call-json ::=", schema_to_grammar(call_schema(tools)), flags=re.MULTILINE)
    body = re.sub(r"^space ::= .*$", SPACE_RULE, body, flags=re.MULTILINE)
    calls = 'tool-call ("\\n" tool-call)*' if parallel else "tool-call"
    root = "tool-calls" if choice != "auto" else "tool-calls | tool-text"
    rules = [
        f"root ::= {root}",
        f"tool-calls ::= {calls}",
        f'tool-call ::= "{OPEN}\\n" tool-call-json "\\n{CLOSE}" | "{FENCE}json\\n" tool-call-json "\\n{FENCE}" '
        "| tool-call-json",
        TEXT_RULE,
    ]
    return "\n".join(rules) + "\n" + body


@dataclass
class ParsedReply:
    """A reply split into its text and its tool calls (valid ones and ones that could not be used)."""

    content: str
    tool_calls: list[ToolCall] = field(default_factory=list)
    invalid_tool_calls: list[InvalidToolCall] = field(default_factory=list)


def new_call_id() -> str:
    """An id for a tool call (the engine gives none in text mode); ToolMessages answer it by this id."""
    return f"call_{uuid.uuid4().hex[:24]}"


@dataclass(frozen=True)
class _Block:
    raw: str
    tagged: bool  # inside <tool_call></tool_call>, so meant as a call even if it is not valid
    complete: bool


def _leading_blocks(text: str) -> tuple[list[_Block], str]:
    """The call blocks ``text`` starts with (any framing the grammar admits), and the text after them."""
    blocks: list[_Block] = []
    rest = text.lstrip()
    decoder = json.JSONDecoder(strict=False)
    while rest:
        if rest.startswith(OPEN):
            body, sep, rest = rest[len(OPEN):].partition(CLOSE)
            blocks.append(_Block(body.strip(), tagged=True, complete=bool(sep)))
        elif rest.startswith(FENCE):
            body, sep, rest = rest[len(FENCE):].partition(FENCE)
            body = body.removeprefix("json") if body.startswith("json") else body
            blocks.append(_Block(body.strip(), tagged=False, complete=bool(sep)))
        elif rest.startswith("{"):
            try:
                _, end = decoder.raw_decode(rest)
            except ValueError:
                blocks.append(_Block(rest, tagged=False, complete=False))
                rest = ""
            else:
                blocks.append(_Block(rest[:end], tagged=False, complete=True))
                rest = rest[end:]
        else:
            break
        rest = rest.lstrip()
    return blocks, rest


def _as_call(raw: str) -> tuple[str, dict[str, Any]]:
    obj = json.loads(raw, strict=False)  # the grammar lets raw newlines into strings
    if not isinstance(obj, dict) or "name" not in obj:
        raise ValueError('expected {"name": ..., "arguments": {...}}')
    name, args = obj["name"], obj.get("arguments", {})
    if isinstance(args, str):  # some templates and models write the arguments as a JSON string
        args = json.loads(args, strict=False)
    if not isinstance(name, str) or not isinstance(args, dict):
        raise ValueError("name must be a string and arguments an object")
    return name, args


def may_hold_calls(text: str) -> bool:
    """Whether ``text`` may hold a tool call (else it is plain text and parsing can be skipped)."""
    return text.lstrip()[:1] in tuple(CALL_STARTS) or OPEN in text


def parse_tool_calls(text: str, tool_names: Sequence[str] | None = None) -> ParsedReply:
    """Split ``text`` into plain content and its tool calls.

    A call is ``<tool_call>{...}</tool_call>`` (the template's format) anywhere, or, at the start of the
    reply, a fenced or bare ``{"name": ..., "arguments": ...}`` (how Qwen 0.5B often writes it; the grammar
    admits all three and keeps plain text from starting like them). A tagged block that is not JSON, names
    no bound tool (when ``tool_names`` is given), or was cut off by the token budget becomes an invalid
    tool call with the reason, so the caller (LangGraph's ToolNode, a repair turn) can tell the model.
    """
    blocks, rest = _leading_blocks(text)
    if blocks and not blocks[0].tagged:
        try:
            _as_call(blocks[0].raw)
        except ValueError:
            blocks, rest = [], text  # a JSON or code answer, not a call
    if not blocks:
        if OPEN not in text:
            return ParsedReply(content=text)
        blocks = [_Block(m.group(1).strip(), tagged=True, complete=m.group(2) is not None)
                  for m in _TAGGED.finditer(text)]
        rest = _TAGGED.sub("", text)
    reply = ParsedReply(content=rest.strip())
    for block in blocks:
        call_id = new_call_id()
        if not block.complete:
            reply.invalid_tool_calls.append(InvalidToolCall(
                name=None, args=block.raw, id=call_id, error="The tool call was cut off (token budget).",
                type="invalid_tool_call"))
            continue
        try:
            name, args = _as_call(block.raw)
        except ValueError as exc:
            reply.invalid_tool_calls.append(InvalidToolCall(
                name=None, args=block.raw, id=call_id, error=f"Not a tool call: {exc}", type="invalid_tool_call"))
            continue
        if tool_names is not None and name not in tool_names:
            reply.invalid_tool_calls.append(InvalidToolCall(
                name=name, args=json.dumps(args, ensure_ascii=False), id=call_id,
                error=f"No tool called {name!r}; the tools are: {', '.join(tool_names)}.", type="invalid_tool_call"))
            continue
        reply.tool_calls.append(ToolCall(name=name, args=args, id=call_id, type="tool_call"))
    return reply
