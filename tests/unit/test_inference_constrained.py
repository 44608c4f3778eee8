"""Constrained output: tool-call schema and grammar from tool schemas, parsing, the bounded repair loop."""

from __future__ import annotations

import json
from typing import Literal

import pytest
from langchain_core.language_models.fake_chat_models import FakeListChatModel
from langchain_core.messages import HumanMessage
from langchain_core.tools import tool
from pydantic import BaseModel, Field, ValidationError

from inference.constrained import (
    ToolSpec,
    call_tool,
    generate_typed,
    parse_tool_call,
    tool_call_schema,
    tools_grammar,
)
from inference.errors import InvalidModelOutput


class FindAccount(BaseModel):
    name: str = Field(description="Account name")


class Stage(BaseModel):
    opportunity_id: int
    stage: Literal["prospect", "won", "lost"]


TOOLS = [ToolSpec("find_account", "Find an account by name", FindAccount),
         ToolSpec("set_stage", "Move an opportunity to a stage", Stage)]
MSGS = [HumanMessage(content="Mark opportunity 7 as won")]


def test_schema_is_a_union_discriminated_by_tool_name() -> None:
    schema = tool_call_schema(TOOLS)
    variants = schema.get("oneOf") or schema.get("anyOf")
    assert variants is not None and len(variants) == 2
    assert "$defs" not in json.dumps(schema) and "$ref" not in json.dumps(schema)
    assert {v["properties"]["tool"]["const"] for v in variants} == {"find_account", "set_stage"}
    assert all(set(v["required"]) == {"tool", "arguments"} for v in variants)
    args = {v["properties"]["tool"]["const"]: v["properties"]["arguments"] for v in variants}
    assert args["set_stage"]["required"] == ["opportunity_id", "stage"]
    assert args["set_stage"]["properties"]["opportunity_id"]["type"] == "integer"


def test_recursive_schema_is_refused() -> None:
    from inference.constrained import inline_refs

    with pytest.raises(ValueError, match="Recursive"):
        inline_refs({"$ref": "#/$defs/N", "$defs": {"N": {"properties": {"next": {"$ref": "#/$defs/N"}}}}})


def test_grammar_admits_only_the_tools_and_their_argument_keys() -> None:
    grammar = tools_grammar(TOOLS)
    assert "root ::=" in grammar
    for literal in ['\\"find_account\\"', '\\"set_stage\\"', '\\"opportunity_id\\"', '\\"name\\"',
                    '\\"tool\\"', '\\"arguments\\"']:
        assert literal in grammar
    assert "prospect" in grammar  # the enum reaches the grammar
    from llama_cpp.llama_grammar import LlamaGrammar

    LlamaGrammar.from_string(grammar, verbose=False)  # llama.cpp accepts it


def test_single_tool_grammar_is_that_tool_only() -> None:
    grammar = tools_grammar(TOOLS[:1])
    assert '\\"find_account\\"' in grammar and "set_stage" not in grammar


def test_parse_accepts_valid_calls_and_types_the_arguments() -> None:
    call = parse_tool_call('{"tool": "set_stage", "arguments": {"opportunity_id": 7, "stage": "won"}}', TOOLS)
    assert call.tool == "set_stage" and isinstance(call.arguments, Stage)
    assert call.arguments.opportunity_id == 7


@pytest.mark.parametrize("text", [
    '{"tool": "delete_all", "arguments": {}}',
    '{"tool": "set_stage", "arguments": {"opportunity_id": "seven", "stage": "won"}}',
    '{"tool": "set_stage", "arguments": {"opportunity_id": 7, "stage": "maybe"}}',
    "not json",
])
def test_parse_rejects_unknown_tools_and_bad_arguments(text: str) -> None:
    with pytest.raises(ValidationError):
        parse_tool_call(text, TOOLS)


def test_langchain_tools_convert_to_specs() -> None:
    @tool
    def lookup(name: str) -> str:
        """Look up an account."""
        return name

    spec = ToolSpec.from_langchain(lookup)
    assert spec.name == "lookup" and "name" in spec.args.model_json_schema()["properties"]


def test_repair_loop_recovers_after_one_bad_answer() -> None:
    good = json.dumps({"tool": "set_stage", "arguments": {"opportunity_id": 7, "stage": "won"}})
    fake = FakeListChatModel(responses=['{"tool": "set_stage"}', good])
    call = call_tool(fake, MSGS, TOOLS, attempts=2)
    assert call.tool == "set_stage"


def test_repair_loop_gives_up_after_n_attempts_with_a_clear_error() -> None:
    fake = FakeListChatModel(responses=["nope", '{"tool": "x"}', "still no", "never asked"])
    with pytest.raises(InvalidModelOutput) as info:
        call_tool(fake, MSGS, TOOLS, attempts=2)
    err = info.value
    assert err.attempts == 3 and err.last_output == "still no"
    assert "no valid answer after 3 tries" in err.message
    assert fake.i == 3  # exactly 1 + 2 repairs were asked, not more


def test_typed_output_validates_against_the_model() -> None:
    fake = FakeListChatModel(responses=['{"name": 3}', '{"name": "Acme"}'])
    assert generate_typed(fake, MSGS, FindAccount, attempts=1).name == "Acme"
    with pytest.raises(InvalidModelOutput):
        generate_typed(FakeListChatModel(responses=["x", "y"]), MSGS, FindAccount, attempts=1)
