"""The drift monitor over HTTP: strategies' conversion, input drift, jobs, A/B tests and the loop's ledger rows."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from fastapi.responses import HTMLResponse

from crm.access import Principal
from crm.errors import Forbidden
from modelops import report
from modelops.status import drift_state, pick_scope
from serving.api.deps import CurrentPrincipal, SessionDep
from serving.api.errors import COMMON_RESPONSES, ErrorBody
from serving.api.routing import StrictQueryRoute

router = APIRouter(route_class=StrictQueryRoute, prefix="/v1/drift", tags=["drift"], responses=COMMON_RESPONSES)
ScopeName = Annotated[Literal["live", "simulation"] | None, Query(
    description="live rows, or a `crmind drift simulate` replay's (default: live, unless only a replay ran here)")]
Days = Annotated[int, Query(ge=7, le=365, description="Days of history to show")]


def _manager(principal: Principal) -> None:
    if principal.role not in ("manager", "admin"):
        raise Forbidden("only managers and admins watch model drift")


@router.get("", summary="Drift monitor state")
def drift(principal: CurrentPrincipal, session: SessionDep, scope: ScopeName = None, days: Days = 60,
          plots: Annotated[bool, Query(description="Include the plots as SVG strings")] = False) -> dict[str, Any]:
    """Each strategy's days judged against its baseline, input drift, jobs, each base's A/B test, the loop's rows."""
    _manager(principal)
    state = drift_state(session, scope=pick_scope(session, scope), days=days)
    if plots:
        state["plots"] = report.plots(state)
    return state


# An HTML route's other responses would be documented as HTML too; its errors are the usual JSON body.
JSON_ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"description": spec["description"],
           "content": {"application/json": {"schema": ErrorBody.model_json_schema()}}}
    for code, spec in COMMON_RESPONSES.items()}


@router.get("/view", response_class=HTMLResponse, responses=JSON_ERRORS,
            summary="The drift page's body (HTML with inline SVG plots)")
def drift_view(principal: CurrentPrincipal, session: SessionDep, scope: ScopeName = None,
               days: Days = 60) -> HTMLResponse:
    """What ``/drift`` shows, rendered on the server."""
    _manager(principal)
    return HTMLResponse(report.body(drift_state(session, scope=pick_scope(session, scope), days=days)))
