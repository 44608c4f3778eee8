"""The assistant over HTTP: ``POST /v1/chat`` (SSE) and the OpenAI-compatible ``/v1/chat/completions``.

Both are thin over ``agents.assistant.runner``: the runner checks its arguments before anything streams (so a
bad request is an ordinary 4xx), then yields typed events that each edge writes in its own dialect.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
import uuid
from collections.abc import Iterator
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Request
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field

from agents.assistant.runner import Assistant, Event, as_dict
from crm.access import Principal
from serving.api.deps import CurrentPrincipal
from serving.api.errors import COMMON_RESPONSES, ErrorBody
from serving.api.routing import StrictQueryRoute

router = APIRouter(route_class=StrictQueryRoute, prefix="/v1", tags=["assistant"], responses={
    **COMMON_RESPONSES, 409: {"model": ErrorBody, "description": "A proposal is waiting (or none is)"}})
ThreadId = Annotated[str, Path(pattern=r"^[A-Za-z0-9._-]{1,64}$")]
MODEL_NAME = "crmind-assistant"


def assistant(request: Request) -> Assistant:
    """The app's one assistant (built on first use: its checkpointer opens the conversation store)."""
    if getattr(request.app.state, "assistant", None) is None:
        from agents.assistant.runner import default_assistant

        request.app.state.assistant = default_assistant()
    found: Assistant = request.app.state.assistant
    return found


# ------------------------------------------------------------------------------------------- /v1/chat (SSE)
class ChatRequest(BaseModel):
    """One message from the rep; omit ``thread_id`` to start a conversation."""

    model_config = ConfigDict(extra="forbid")
    message: str = Field(min_length=1, max_length=4000)
    thread_id: str | None = Field(None, pattern=r"^[A-Za-z0-9._-]{1,64}$")


class DecisionRequest(BaseModel):
    """The rep's answer to the waiting proposal."""

    model_config = ConfigDict(extra="forbid")
    action: Literal["approve", "edit", "reject"]
    edits: dict[str, Any] = Field(default_factory=dict, max_length=50)
    reason: str = Field("", max_length=1000)
    proposal_id: int | None = Field(None, ge=1, le=2**31 - 1)


def _sse(event: str, data: dict[str, Any]) -> str:
    return f"event: {event}\ndata: {json.dumps(data, ensure_ascii=False, default=str)}\n\n"


def _sse_events(thread_id: str, events: Iterator[Event]) -> Iterator[str]:
    """Runner events as SSE: ``thread``, ``token``, ``tool``, ``proposal``, ``citation``, ``answer``, ``error``."""
    yield _sse("thread", {"thread_id": thread_id})
    for event in events:
        data = as_dict(event)
        kind = data.pop("type")
        if kind == "tool_step":
            yield _sse("tool", {"name": data["tool"], "summary": data["summary"], "ok": data["ok"],
                                "refs": data["refs"]})
        elif kind == "proposal":
            yield _sse("proposal", {**data["proposal"], "tool": data["tool"], "error": data["error"]})
        elif kind == "answer":
            links = [{"ref": ref, "link": _page_link(ref)} for ref in data["citations"]]
            yield _sse("answer", {**data, "citations": links})
        else:
            yield _sse(kind, data)
    yield _sse("done", {})


def _page_link(ref: str) -> str | None:
    obj, _, ident = ref.partition(":")
    return f"/records/{obj}/{ident}" if ident.isdigit() and obj != "chunk" else None


def _streaming(body: Iterator[str]) -> StreamingResponse:
    return StreamingResponse(body, media_type="text/event-stream",
                             headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})


@router.post("/chat", summary="Ask the assistant (server-sent events)",
             response_description="text/event-stream: thread, token, tool, proposal, citation, answer, error, done")
def chat(body: ChatRequest, request: Request, principal: CurrentPrincipal) -> StreamingResponse:
    """Stream one turn. It ends with ``answer``, or with ``proposal`` when a change waits for the rep's decision."""
    thread_id = body.thread_id or uuid.uuid4().hex[:16]
    events = assistant(request).start_turn(principal, thread_id, body.message)
    return _streaming(_sse_events(thread_id, events))


@router.post("/chat/{thread_id}/decision", summary="Approve, edit or reject the waiting proposal (SSE)")
def decide(thread_id: ThreadId, body: DecisionRequest, request: Request,
           principal: CurrentPrincipal) -> StreamingResponse:
    """Applies (or rejects) the proposal, then the assistant carries on and streams the rest of its turn."""
    events = assistant(request).resume(principal, thread_id, body.model_dump())
    return _streaming(_sse_events(thread_id, events))


class ThreadView(BaseModel):
    """A conversation as the rep saw it, and the proposal waiting in it (if any)."""

    thread_id: str
    messages: list[dict[str, str]]
    pending: dict[str, Any] | None


@router.get("/chat/{thread_id}", response_model=ThreadView, summary="A conversation and its waiting proposal")
def thread(thread_id: ThreadId, request: Request, principal: CurrentPrincipal) -> ThreadView:
    """Survives restarts: conversations live in the checkpointer (SQLite or PostgreSQL)."""
    bot = assistant(request)
    waiting = bot.pending(principal, thread_id)
    return ThreadView(thread_id=thread_id, messages=bot.history(principal, thread_id),
                      pending=as_dict(waiting) if waiting else None)


# ------------------------------------------------------------------------ OpenAI-compatible chat completions
class OpenAIMessage(BaseModel):
    """A chat message as OpenAI clients send it (text content only)."""

    role: Literal["system", "user", "assistant", "tool", "developer"]
    content: str | list[dict[str, Any]] | None = None


class CompletionRequest(BaseModel):
    """The subset of OpenAI's chat-completions request the assistant uses; other fields are accepted and ignored."""

    model_config = ConfigDict(extra="allow")
    model: str = MODEL_NAME
    messages: list[OpenAIMessage] = Field(min_length=1, max_length=200)
    stream: bool = False
    user: str | None = Field(None, max_length=64)
    thread_id: str | None = Field(None, pattern=r"^[A-Za-z0-9._-]{1,64}$",
                                  description="crmind extension (extra_body): continue this conversation")


_APPROVE = re.compile(r"^\s*(approve|approved|yes|ok|confirm|批准|同意|确认|可以|好的?)\s*[.!。！]?\s*$", re.IGNORECASE)
_REJECT = re.compile(r"^\s*(reject|rejected|no|cancel|deny|拒绝|不要|取消|不同意)\b", re.IGNORECASE)


def _text(m: OpenAIMessage) -> str:
    if isinstance(m.content, str):
        return m.content
    return "".join(str(p.get("text", "")) for p in (m.content or []) if isinstance(p, dict))


def _openai_thread(body: CompletionRequest) -> str:
    """The conversation's thread: the ``thread_id`` extension, or one named by its first user message.

    OpenAI's API is stateless: a client resends the whole conversation, and each request adds its last message.
    """
    if body.thread_id:
        return body.thread_id
    first = next((_text(m) for m in body.messages if m.role == "user"), "")
    return "oa-" + hashlib.sha256(first.encode()).hexdigest()[:16]


def _openai_events(bot: Assistant, principal: Principal, thread_id: str, message: str) -> Iterator[Event]:
    """A plain "approve"/"reject" (or 批准/拒绝) answers the waiting proposal; anything else starts a turn."""
    waiting = bot.pending(principal, thread_id) if _thread_exists(bot, principal, thread_id) else None
    if waiting is not None and (_APPROVE.match(message) or _REJECT.match(message)):
        action = "approve" if _APPROVE.match(message) else "reject"
        return bot.resume(principal, thread_id, {"action": action, "reason": "" if action == "approve" else message})
    return bot.start_turn(principal, thread_id, message)


def _thread_exists(bot: Assistant, principal: Principal, thread_id: str) -> bool:
    from agents.errors import ThreadNotFound

    try:
        bot.history(principal, thread_id)
        return True
    except ThreadNotFound:
        return False


def _proposal_text(p: dict[str, Any]) -> str:
    changes = ", ".join(f"{f}: {c.get('before')} -> {c.get('after')}" for f, c in (p.get("changes") or {}).items())
    target = f"{p['object_type']}:{p['record_id']}" if p.get("record_id") else f"a new {p['object_type']}"
    return (f"\n\nProposed change to {target} ({changes}). Nothing is written until you answer "
            f"'approve' or 'reject'.")


@router.post("/chat/completions", summary="OpenAI-compatible chat completions (your crmind token is the API key)")
def completions(body: CompletionRequest, request: Request, principal: CurrentPrincipal) -> Any:
    """Any OpenAI client or SDK talks to the assistant; ``stream: true`` sends ``chat.completion.chunk`` events."""
    user_messages = [m for m in body.messages if m.role == "user"]
    if not user_messages:
        from agents.errors import InvalidRequest

        raise InvalidRequest("the conversation has no user message")
    bot = assistant(request)
    thread_id = _openai_thread(body)
    events = _openai_events(bot, principal, thread_id, _text(user_messages[-1]))
    ident, created = f"chatcmpl-{uuid.uuid4().hex[:24]}", int(time.time())
    if body.stream:
        return _streaming(_openai_chunks(events, ident, created, thread_id))
    text, extra = _collect(events)
    return JSONResponse({
        "id": ident, "object": "chat.completion", "created": created, "model": MODEL_NAME,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0},
        "crmind": {"thread_id": thread_id, **extra},
    })


def _collect(events: Iterator[Event]) -> tuple[str, dict[str, Any]]:
    """The turn's final text (the answer, plus any waiting proposal) and crmind's structured extras."""
    text, extra = "", {"citations": [], "grounded": None, "proposal": None, "tool_steps": []}
    for event in events:
        data = as_dict(event)
        if data["type"] == "answer":
            text, extra["citations"], extra["grounded"] = data["text"], data["citations"], data["grounded"]
        elif data["type"] == "proposal":
            extra["proposal"] = data["proposal"]
            text += _proposal_text(data["proposal"])
        elif data["type"] == "tool_step":
            extra["tool_steps"].append({"tool": data["tool"], "ok": data["ok"], "summary": data["summary"]})
        elif data["type"] == "error":
            text += ("\n\n" if text else "") + data["message"]
    return text.strip(), extra


def _openai_chunks(events: Iterator[Event], ident: str, created: int, thread_id: str) -> Iterator[str]:
    def chunk(delta: dict[str, Any], finish: str | None = None) -> str:
        body = {"id": ident, "object": "chat.completion.chunk", "created": created, "model": MODEL_NAME,
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}
        return f"data: {json.dumps(body, ensure_ascii=False)}\n\n"

    yield chunk({"role": "assistant", "content": ""})
    for event in events:
        data = as_dict(event)
        # Draft tokens are not sent: an OpenAI client can't take text back, and only the final answer has had
        # its citations checked (unknown ones stripped).
        if data["type"] == "answer":
            yield chunk({"content": data["text"]})
        elif data["type"] == "proposal":
            yield chunk({"content": _proposal_text(data["proposal"])})
        elif data["type"] == "error":
            yield chunk({"content": "\n\n" + data["message"]})
    yield chunk({}, "stop")
    yield "data: [DONE]\n\n"


class ModelList(BaseModel):
    """OpenAI's model list: the assistant is the one model."""

    object: str = "list"
    data: list[dict[str, Any]]


@router.get("/models", response_model=ModelList, summary="OpenAI-compatible model list")
def models(principal: CurrentPrincipal) -> ModelList:
    """The assistant, as OpenAI clients list it."""
    return ModelList(data=[{"id": MODEL_NAME, "object": "model", "created": 0, "owned_by": "crmind"}])
