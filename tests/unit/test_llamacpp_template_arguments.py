"""Tool-call arguments reach a transformers-style chat template as objects, as the model was trained to see them."""

from __future__ import annotations

import json

import pytest
from llama_cpp import llama_chat_format as fmt

from inference.llamacpp_server import render_arguments_as_objects, with_argument_objects

# The tool-call line of Qwen2.5's template (the GGUF carries the whole template).
QWEN_LIKE = (
    "{%- for m in messages %}{%- if m.tool_calls %}{%- for c in m.tool_calls %}"
    '{{- \'<tool_call>\\n{"name": "\' }}{{- c.function.name }}{{- \'", "arguments": \' }}'
    "{{- c.function.arguments | tojson }}{{- '}\\n</tool_call>' }}{%- endfor %}"
    "{%- else %}{{- m.content }}{%- endif %}{%- endfor %}"
)
HISTORY = [{"role": "user", "content": "deals in negotiation?"},
           {"role": "assistant", "content": None, "tool_calls": [{"id": "c1", "type": "function", "function": {
               "name": "list_opportunities", "arguments": '{"stage": "negotiation", "limit": 3}'}}]}]


def _rendered(formatter: fmt.Jinja2ChatFormatter) -> str:
    return formatter(messages=HISTORY).prompt


def test_the_api_string_would_render_double_encoded_and_objects_render_as_trained(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fmt.Jinja2ChatFormatter, "__call__", fmt.Jinja2ChatFormatter.__call__)  # restored after
    formatter = fmt.Jinja2ChatFormatter(template=QWEN_LIKE, eos_token="<|im_end|>", bos_token="")
    assert '"arguments": "{\\"stage\\"' in _rendered(formatter)  # what the model saw before: a quoted string
    render_arguments_as_objects()
    prompt = _rendered(formatter)
    call = json.loads(prompt.split("<tool_call>\n", 1)[1].split("\n</tool_call>")[0])
    assert call == {"name": "list_opportunities", "arguments": {"stage": "negotiation", "limit": 3}}


def test_unparsable_arguments_and_other_messages_pass_through_unchanged() -> None:
    bad = [{"role": "assistant", "tool_calls": [{"function": {"name": "x", "arguments": "{not json"}}]},
           {"role": "tool", "content": "<data>…</data>", "tool_call_id": "c1"}]
    assert with_argument_objects(bad) == bad
    assert HISTORY[1]["tool_calls"][0]["function"]["arguments"].startswith("{")  # the caller's list is not mutated
    assert with_argument_objects(HISTORY)[1]["tool_calls"][0]["function"]["arguments"] == {
        "stage": "negotiation", "limit": 3}
