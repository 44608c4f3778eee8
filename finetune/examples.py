"""One training example: a chat in OpenAI message format whose last message is the model's target.

A line of ``train.jsonl``::

    {"id": "3f9c...", "source": "synthetic" | "ledger",
     "kind": "tool_call" | "answer" | "clarify" | "refusal" | "no_tool" | "rule",
     "language": "en" | "zh", "prompt": "assistant" | "rule_author",
     "messages": [{"role": "system", ...}, {"role": "user", ...}, ..., <target>],
     "contact_ids": [12], "refs": ["contact:12", "opportunity:40"]}

The target is ``{"role": "assistant", "content": "..."}`` or ``{"role": "assistant", "content": "", "tool_calls":
[{"type": "function", "function": {"name": ..., "arguments": {...}}}]}``; earlier messages are the context the model
saw. ``contact_ids`` are the people whose data the example holds (an erase removes the example by them).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from langchain_core.messages import BaseMessage, convert_to_openai_messages

Source = Literal["synthetic", "ledger"]
Kind = Literal["tool_call", "answer", "clarify", "refusal", "no_tool", "rule"]
PromptName = Literal["assistant", "rule_author"]
KINDS: tuple[Kind, ...] = ("tool_call", "answer", "clarify", "refusal", "no_tool", "rule")
_REF = re.compile(r"\b(account|contact|lead|opportunity|activity|case|article|proposal):(\d+)\b")


@dataclass
class Example:
    """One chat to train on; ``messages[-1]`` is the assistant's target."""

    source: Source
    kind: Kind
    language: str
    prompt: PromptName
    messages: list[dict[str, Any]]
    contact_ids: list[int] = field(default_factory=list)
    refs: list[str] = field(default_factory=list)
    id: str = ""

    def __post_init__(self) -> None:
        if not self.id:
            # Content-addressed: the same chat gets the same id in every build (a seed reproduces a set exactly).
            body = json.dumps([self.prompt, self.kind, self.messages], sort_keys=True, ensure_ascii=False)
            self.id = hashlib.sha256(body.encode("utf-8")).hexdigest()[:16]

    @property
    def target(self) -> dict[str, Any]:
        """The message the model is trained to produce."""
        return self.messages[-1]

    def to_json(self) -> dict[str, Any]:
        """The JSONL record (field order as documented above)."""
        d = asdict(self)
        return {"id": d.pop("id"), **d}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Example:
        """Read a JSONL record back."""
        return cls(**data)

    def trained_texts(self) -> list[str]:
        """What the rep and the model say (user and assistant text, tool-call argument values): the leak check's input.

        System prompts and tool results are context crmind itself writes or reads from the CRM, not eval text.
        """
        out: list[str] = []
        for m in self.messages:
            if m["role"] not in ("user", "assistant"):
                continue
            if isinstance(m.get("content"), str) and m["content"]:
                out.append(m["content"])
            for call in m.get("tool_calls") or []:
                out.extend(strings(call["function"]["arguments"]))
        return out

    def all_text(self) -> str:
        """Every string in the example (what an erase pattern is matched against)."""
        return json.dumps(self.messages, ensure_ascii=False)


@dataclass
class Negative:
    """A rejected model output, with the output the person preferred where there is one (a DPO pair)."""

    language: str
    prompt: PromptName
    messages: list[dict[str, Any]]
    """The context: what the model saw before it answered."""
    rejected: dict[str, Any]
    chosen: dict[str, Any] | None = None
    source: Source = "ledger"
    contact_ids: list[int] = field(default_factory=list)
    refs: list[str] = field(default_factory=list)
    reason: str = ""
    id: str = ""

    def __post_init__(self) -> None:
        if not self.id:
            body = json.dumps([self.prompt, self.messages, self.rejected, self.chosen], sort_keys=True,
                              ensure_ascii=False)
            self.id = hashlib.sha256(body.encode("utf-8")).hexdigest()[:16]

    def to_json(self) -> dict[str, Any]:
        """The JSONL record."""
        d = asdict(self)
        return {"id": d.pop("id"), **d}

    def all_text(self) -> str:
        """Every string in the pair."""
        return json.dumps([self.messages, self.rejected, self.chosen, self.reason], ensure_ascii=False)

    def trained_texts(self) -> list[str]:
        """User text of the context and both outputs' text."""
        holder = Example(source=self.source, kind="answer", language=self.language, prompt=self.prompt,
                         messages=[*self.messages, self.rejected, *([self.chosen] if self.chosen else [])])
        return holder.trained_texts()


def strings(value: Any) -> Iterator[str]:
    """Every string inside a JSON-like value (dict values and list items, depth first)."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for v in value.values():
            yield from strings(v)
    elif isinstance(value, list):
        for v in value:
            yield from strings(v)


def openai_messages(messages: Sequence[BaseMessage]) -> list[dict[str, Any]]:
    """LangChain messages as OpenAI chat dicts, with tool-call arguments as dicts (what chat templates render)."""
    out: list[dict[str, Any]] = convert_to_openai_messages(list(messages))
    for m in out:
        for call in m.get("tool_calls") or []:
            args = call["function"].get("arguments")
            if isinstance(args, str):
                call["function"]["arguments"] = json.loads(args or "{}")
    return out


def call_target(name: str, args: dict[str, Any]) -> dict[str, Any]:
    """A tool call as the training target."""
    return {"role": "assistant", "content": "",
            "tool_calls": [{"type": "function", "function": {"name": name, "arguments": args}}]}


def text_target(text: str) -> dict[str, Any]:
    """A text reply as the training target."""
    return {"role": "assistant", "content": text}


def refs_in(texts: Iterable[str]) -> list[str]:
    """Record references (``contact:12``) named anywhere in ``texts``, in first-seen order."""
    seen: dict[str, None] = {}
    for text in texts:
        for m in _REF.finditer(text):
            seen.setdefault(f"{m.group(1)}:{m.group(2)}", None)
    return list(seen)
