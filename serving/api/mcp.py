"""crmind's CRM tools over MCP (streamable HTTP at ``/mcp``), under the caller's own crmind token.

The same tool catalogue as the assistant (``agents.assistant.tools.TOOLS``), the same permissions (every call
runs as the token's Principal) and the same proposal-only writes: a write tool returns a pending proposal that a
person approves in crmind, never a change.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

import anyio
import mcp_types as types
from mcp.server.lowlevel import Server
from pydantic import ValidationError
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from agents.assistant.tools import TOOLS, TOOLS_BY_NAME, ToolEnv
from config.db import session_factory
from config.errors import CrmindError
from crm.access import Principal
from crm.auth import principal_from_token
from crm.errors import NotFound


def _principal(request: Any) -> Principal:
    """The caller, from the request's bearer token (``NotFound`` for a missing or unknown token)."""
    header = request.headers.get("authorization", "") if request is not None else ""
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise NotFound("missing bearer token")
    with session_factory()() as session:
        return principal_from_token(session, token.strip())


def _tool_list() -> list[types.Tool]:
    return [types.Tool(name=t.name, description=t.description + (" (proposes a change for a person to approve; "
                                                                 "never writes)" if t.writes else ""),
                       input_schema=t.args.model_json_schema(),
                       annotations=types.ToolAnnotations(read_only_hint=not t.writes, destructive_hint=False))
            for t in TOOLS]


def call(principal: Principal, name: str, arguments: dict[str, Any]) -> dict[str, Any]:
    """Run one catalogue tool as ``principal`` and commit (a proposal row, ledger rows); the result as JSON data."""
    tool = TOOLS_BY_NAME.get(name)
    if tool is None:
        raise NotFound(f"no tool named {name}")
    args = tool.args.model_validate(arguments)
    with session_factory()() as session:
        env = ToolEnv(session=session, principal=principal, now=datetime.now(UTC).replace(tzinfo=None),
                      thread_id=f"mcp:{principal.user_id}", turn_id=None, tool_call_id=uuid.uuid4().hex,
                      message=f"MCP call of {name}", search=None)
        result = tool.run(env, args)
        session.commit()
    return {"data": result.data, "refs": result.refs, "summary": result.summary,
            **({"proposal_id": result.proposal_id, "status": "waiting for a person's approval in crmind"}
               if result.proposal_id else {})}


async def _list_tools(ctx: Any, params: types.PaginatedRequestParams | None) -> types.ListToolsResult:
    _principal(ctx.request)  # listing needs a valid token too
    return types.ListToolsResult(tools=_tool_list())


async def _call_tool(ctx: Any, params: types.CallToolRequestParams) -> types.CallToolResult:
    try:
        principal = _principal(ctx.request)
        out = await anyio.to_thread.run_sync(call, principal, params.name, dict(params.arguments or {}))
    except ValidationError as exc:
        message = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()[:5])
        return types.CallToolResult(content=[types.TextContent(type="text", text=f"invalid arguments: {message}")],
                                    is_error=True)
    except CrmindError as exc:
        return types.CallToolResult(content=[types.TextContent(type="text", text=exc.message)], is_error=True)
    text = json.dumps(out, ensure_ascii=False, default=str)
    return types.CallToolResult(content=[types.TextContent(type="text", text=text)], structured_content=out)


SERVER = Server("crmind", version="0.1.0", instructions="CRM tools under your crmind token: reads respect your "
                "permissions; writes return proposals that a person approves in crmind.",
                on_list_tools=_list_tools, on_call_tool=_call_tool)


class _RequireToken:
    """Refuses a request without a valid crmind token before it reaches the MCP session (401, as the API)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            try:
                await anyio.to_thread.run_sync(_principal, Request(scope))
            except NotFound:
                await JSONResponse({"detail": "missing, unknown or revoked bearer token"}, 401,
                                   headers={"WWW-Authenticate": "Bearer"})(scope, receive, send)
                return
        await self.app(scope, receive, send)


def mcp_app() -> tuple[ASGIApp, Any]:
    """The ASGI app to mount at ``/mcp`` and the lifespan that runs its session manager.

    Stateless: every request stands alone (no server-side session to lose on a restart or to pin to one worker).
    """
    starlette_app = SERVER.streamable_http_app(streamable_http_path="/", stateless_http=True, json_response=True,
                                               host="0.0.0.0")  # the app's own host check happens upstream

    manager = SERVER.session_manager  # this app's own manager: run() may be entered once per manager

    @asynccontextmanager
    async def lifespan() -> AsyncIterator[None]:
        async with manager.run():  # the transport's task group
            yield

    return _RequireToken(starlette_app), lifespan
