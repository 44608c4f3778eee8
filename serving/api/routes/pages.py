"""The web pages (chat, record, customer, duplicates, why, rules, drift, sign-in, console); demo mode's user picker."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter
from fastapi import Path as PathParam
from fastapi.responses import FileResponse, RedirectResponse
from pydantic import BaseModel

from config.objects import OBJECT_TYPES
from config.settings import get_settings
from serving.api.routes.customers import CUSTOMER_REF_PATTERN

WEB = Path(__file__).resolve().parents[1] / "web"
router = APIRouter(include_in_schema=False)
ObjectName = Annotated[str, PathParam(pattern="^(" + "|".join(OBJECT_TYPES) + ")$")]
# The references the customer API accepts, so a bad one is a 422 here too, not a page that fails later.
CustomerRef = Annotated[str, PathParam(pattern=CUSTOMER_REF_PATTERN)]


def _page(name: str) -> FileResponse:
    return FileResponse(WEB / name, media_type="text/html", headers={"Cache-Control": "no-cache"})


@router.get("/")
def home() -> RedirectResponse:
    """Reps start at the assistant."""
    return RedirectResponse("/chat")


@router.get("/chat")
def chat_page() -> FileResponse:
    """Chat with the assistant: streamed answers, citations, proposal cards to approve, edit or reject."""
    return _page("chat.html")


@router.get("/records/{obj}/{record_id}")
def record_page(obj: ObjectName, record_id: Annotated[int, PathParam(ge=1, le=2**31 - 1)]) -> FileResponse:
    """One record as the signed-in role sees it, with related records and its decisions."""
    return _page("record.html")


@router.get("/customers/{customer_ref}")
def customer_page(customer_ref: CustomerRef) -> FileResponse:
    """Customer 360: linked identities with reasons, scores and their factors, the timeline, pending merges."""
    return _page("customer.html")


@router.get("/duplicates")
def duplicates_page() -> FileResponse:
    """The duplicate review queue: records side by side, propose a merge, approve or reject it, unmerge."""
    return _page("duplicates.html")


@router.get("/why/{decision_id}")
def why_page(decision_id: Annotated[str, PathParam(pattern=r"^[0-9a-f\-]{36}$")]) -> FileResponse:
    """The ledger's trace of one answer or change."""
    return _page("why.html")


@router.get("/rules")
def rules_page() -> FileResponse:
    """Write a rule, read its explanation, backtest, findings; approve, activate; recent firings and why."""
    return _page("rules.html")


@router.get("/drift")
def drift_page() -> FileResponse:
    """The drift monitor: conversion per strategy, input drift, retraining jobs, A/B tests, the loop's ledger rows."""
    return _page("drift.html")


@router.get("/signin")
def signin_page() -> FileResponse:
    """Paste a token, or pick a demo user."""
    return _page("signin.html")


@router.get("/console")
def console_page() -> FileResponse:
    """The records, search, proposals and decisions console."""
    return _page("index.html")


class DemoUser(BaseModel):
    """A demo user and the token that signs them in."""

    name: str
    email: str
    role: str
    token: str


@router.get("/v1/demo/users", response_model=list[DemoUser])
def demo_users() -> list[DemoUser]:
    """The demo's users with their tokens, for the sign-in picker; empty outside development or without a demo."""
    settings = get_settings()
    path = settings.data_dir / "demo_tokens.json"
    if settings.environment != "development" or not path.is_file():
        return []
    users = json.loads(path.read_text(encoding="utf-8"))
    # One user per role and team keeps the picker short; every token stays in the file.
    seen: set[tuple[str, str | None]] = set()
    out = []
    for u in users:
        key = (u["role"], u.get("team"))
        if key not in seen:
            seen.add(key)
            out.append(DemoUser(name=f"{u['name']} ({u.get('team') or 'all teams'})", email=u["email"],
                                role=u["role"], token=u["token"]))
    return out
