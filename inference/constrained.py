"""Constrained decoding for tool calls and typed outputs, with a bounded repair loop.

A tool call is one JSON object ``{"tool": <name>, "arguments": {...}}``; its schema is the union of
the tools' argument schemas, built by pydantic so that one model both constrains and validates. The
engines compile the schema to a grammar (llama.cpp) or xgrammar (vLLM); :func:`tools_grammar` gives
the GBNF itself for llama.cpp's ``grammar`` field. Output that still fails validation is sent back
with the error, at most ``attempts`` times; then :class:`InvalidModelOutput` is raised.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Annotated, Any, Literal, TypeVar, Union

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage
from pydantic import BaseModel, Field, RootModel, ValidationError, create_model

from inference.errors import InvalidModelOutput
from prompts.loader import load_prompt

T = TypeVar("T", bound=BaseModel)


@dataclass(frozen=True)
class ToolSpec:
    """A tool the model may call: its name, what it does, and its arguments as a pydantic model."""

    name: str
    description: str
    args: type[BaseModel]

    @classmethod
    def from_langchain(cls, tool: Any) -> ToolSpec:
        """From a LangChain ``BaseTool`` whose ``args_schema`` is a pydantic model."""
        schema = tool.args_schema
        if not (isinstance(schema, type) and issubclass(schema, BaseModel)):
            raise TypeError(f"Tool {tool.name!r} needs a pydantic args_schema for constrained calls.")
        return cls(name=tool.name, description=tool.description or "", args=schema)


class ToolCall(BaseModel):
    """A parsed, validated tool call."""

    tool: str
    arguments: BaseModel


def tool_call_model(tools: Sequence[ToolSpec]) -> type[RootModel[Any]]:
    """A pydantic root model accepting exactly one call of one of ``tools`` (discriminated by name)."""
    if not tools:
        raise ValueError("A tool call needs at least one tool.")
    names = [t.name for t in tools]
    if len(set(names)) != len(names):
        raise ValueError(f"Tool names must be unique: {names}")
    variants: list[Any] = []
    for t in tools:
        variants.append(create_model(
            f"Call_{t.name}",
            __doc__=t.description or None,
            tool=(Literal[t.name], ...),  # type: ignore[arg-type]
            arguments=(t.args, ...),
        ))
    if len(variants) == 1:
        return RootModel[variants[0]]  # type: ignore[valid-type]
    union = Annotated[Union[tuple(variants)], Field(discriminator="tool")]  # type: ignore[valid-type]  # noqa: UP007
    return RootModel[union]  # type: ignore[valid-type]


def inline_refs(schema: dict[str, Any]) -> dict[str, Any]:
    """``schema`` with every local ``$ref`` replaced by its definition.

    llama-cpp-python's converter does not resolve ``#/$defs/...`` and its server then silently falls
    back to plain JSON; inlining keeps the constraint exact. Recursive schemas are refused.
    """
    defs = schema.get("$defs", {})

    def walk(node: Any, seen: tuple[str, ...]) -> Any:
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str) and ref.startswith("#/$defs/"):
                name = ref.removeprefix("#/$defs/")
                if name in seen:
                    raise ValueError(f"Recursive schema ({name}) cannot be constrained.")
                rest = {k: v for k, v in node.items() if k != "$ref"}
                return {**walk(defs[name], (*seen, name)), **walk(rest, seen)}
            return {k: walk(v, seen) for k, v in node.items() if k != "$defs"}
        if isinstance(node, list):
            return [walk(v, seen) for v in node]
        return node

    result: dict[str, Any] = walk(schema, ())
    return result


def tool_call_schema(tools: Sequence[ToolSpec]) -> dict[str, Any]:
    """The JSON schema (refs inlined) of one call of one of ``tools``."""
    schema = tool_call_model(tools).model_json_schema()
    schema.pop("discriminator", None)  # an OpenAPI keyword, not JSON Schema
    return inline_refs(schema)


def schema_to_grammar(schema: dict[str, Any]) -> str:
    """GBNF grammar for ``schema`` (llama.cpp's own converter, so the server and we agree)."""
    from llama_cpp.llama_grammar import json_schema_to_gbnf

    return str(json_schema_to_gbnf(json.dumps(schema)))


def tools_grammar(tools: Sequence[ToolSpec]) -> str:
    """GBNF grammar that only admits a call of one of ``tools`` with valid arguments."""
    return schema_to_grammar(tool_call_schema(tools))


def parse_tool_call(text: str, tools: Sequence[ToolSpec]) -> ToolCall:
    """Validate ``text`` as a call of one of ``tools`` (raises ``ValidationError``)."""
    root = tool_call_model(tools).model_validate_json(text).root
    return ToolCall(tool=root.tool, arguments=root.arguments)


def _short_error(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        return "; ".join(f"{'.'.join(map(str, e['loc'])) or 'value'}: {e['msg']}" for e in exc.errors()[:5])
    return str(exc)[:300]


def repair_loop(chat: BaseChatModel, messages: Sequence[BaseMessage], parse: Any, *, attempts: int) -> Any:
    """Call ``chat`` and ``parse`` its text; on failure send the error back, up to ``attempts`` repairs."""
    repair = load_prompt("output_repair")
    history = list(messages)
    last_text, last_error = "", ""
    for _ in range(attempts + 1):
        reply = chat.invoke(history)
        last_text = reply.content if isinstance(reply.content, str) else json.dumps(reply.content)
        try:
            return parse(last_text)
        except (ValidationError, ValueError) as exc:
            last_error = _short_error(exc)
        history += [AIMessage(content=last_text), HumanMessage(content=repair.render(error=last_error))]
    raise InvalidModelOutput(
        f"The model gave no valid answer after {attempts + 1} tries ({last_error}).",
        attempts=attempts + 1, last_output=last_text, last_error=last_error,
    )


def generate_typed(
    chat: BaseChatModel, messages: Sequence[BaseMessage], output: type[T], *, attempts: int = 2
) -> T:
    """A validated ``output`` from a chat model constrained to ``output``'s schema (see ``typed_chat``)."""
    result: T = repair_loop(chat, messages, output.model_validate_json, attempts=attempts)
    return result


def call_tool(
    chat: BaseChatModel, messages: Sequence[BaseMessage], tools: Sequence[ToolSpec], *, attempts: int = 2
) -> ToolCall:
    """A validated call of one of ``tools`` from a chat model constrained to their schema."""
    result: ToolCall = repair_loop(chat, messages, lambda text: parse_tool_call(text, tools),
                                   attempts=attempts)
    return result


def typed_chat(output: type[BaseModel], **gateway_kwargs: Any) -> BaseChatModel:
    """A gateway chat model whose output is constrained to ``output``'s JSON schema."""
    from inference.gateway import chat_model

    return chat_model(json_schema=inline_refs(output.model_json_schema()), **gateway_kwargs)


def tool_chat(
    tools: Sequence[ToolSpec], *, use_grammar: bool = False, **gateway_kwargs: Any
) -> BaseChatModel:
    """A gateway chat model constrained to a call of one of ``tools`` (schema, or GBNF on llama.cpp)."""
    from inference.gateway import chat_model

    if use_grammar:
        return chat_model(grammar=tools_grammar(tools), **gateway_kwargs)
    return chat_model(json_schema=tool_call_schema(tools), **gateway_kwargs)
