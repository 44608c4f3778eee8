"""Training text exactly as the engine renders it: the base's chat template, the assistant's real tool schemas.

A fine-tuned model only helps if it is trained on the prompt it will be served with. So the tools are taken
from the gateway's own ``bind_tools`` request (the JSON the engine receives), and the messages go through the
same chat template the engine uses: crmind's ``inference/templates/<name>.jinja`` where the base has one
(SmolLM2), otherwise the template inside the GGUF (Qwen's own). The target is whatever the template renders
after the generation prompt (for a tool call: ``<tool_call>``, newline, the JSON, newline, ``</tool_call><|im_end|>``,
the framing the tool-call grammar admits), so training and constrained decoding agree byte for byte.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from typing import Any

from finetune.errors import FinetuneError
from inference.bases import get_base


@dataclass(frozen=True)
class Rendered:
    """One example as text: the prompt the model sees, and the completion it learns to write."""

    prompt: str
    completion: str


@cache
def assistant_tools() -> tuple[dict[str, Any], ...]:
    """The assistant's tools as the OpenAI ``tools`` of its real requests (the gateway's ``bind_tools``)."""
    from agents.assistant.graph import with_tools
    from inference.gateway import chat_model

    bound = with_tools(chat_model("smollm2", prompt="finetune"))
    kwargs = getattr(bound, "kwargs", None) or getattr(getattr(bound, "bound", None), "kwargs", {})
    tools = kwargs.get("tools")
    if not tools:
        raise FinetuneError("Could not read the assistant's tool schemas from the gateway's request.")
    return tuple(json.loads(json.dumps(tools)))


def tools_for(prompt: str) -> list[dict[str, Any]] | None:
    """The tools a prompt kind is served with: the assistant's for its turns, none for the rule author."""
    return list(assistant_tools()) if prompt == "assistant" else None


def chat_template(base: str, tokenizer: Any) -> str:
    """The template the engine serves ``base`` with."""
    path = get_base(base).chat_template_path()
    if path is not None:
        return path.read_text(encoding="utf-8")
    template = getattr(tokenizer, "chat_template", None)
    if not template:
        raise FinetuneError(f"The base {base!r} has no chat template to render training text with.")
    return str(template)


def _normalised(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Tool-call arguments as mappings (templates render them with ``tojson``); content never None."""
    out = []
    for message in messages:
        message = dict(message)
        if message.get("content") is None:
            message["content"] = ""
        calls = []
        for call in message.get("tool_calls") or []:
            fn = dict(call.get("function", call))
            if isinstance(fn.get("arguments"), str):
                fn["arguments"] = json.loads(fn["arguments"])
            calls.append({"type": "function", "function": fn})
        if calls:
            message["tool_calls"] = calls
        out.append(message)
    return out


def render(example: dict[str, Any], *, tokenizer: Any, template: str) -> Rendered:
    """Split one example (its last message is the target) into prompt text and completion text."""
    messages = _normalised(example["messages"])
    if not messages or messages[-1].get("role") != "assistant":
        raise FinetuneError(f"Example {example.get('id')!r} does not end with the assistant's message.")
    tools = tools_for(example.get("prompt", "assistant"))
    prompt = tokenizer.apply_chat_template(messages[:-1], tools=tools, chat_template=template, tokenize=False,
                                           add_generation_prompt=True)
    full = tokenizer.apply_chat_template(messages, tools=tools, chat_template=template, tokenize=False)
    if not full.startswith(prompt):
        raise FinetuneError(f"The chat template renders example {example.get('id')!r} inconsistently.")
    completion = full[len(prompt):]
    # Templates end a turn with "<|im_end|>\n": the stop token is what the model must learn, the newline isn't.
    return Rendered(prompt=prompt, completion=completion.rstrip("\n"))
