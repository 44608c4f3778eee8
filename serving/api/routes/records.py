"""List (filter, sort, cursor, text search) and get for every CRM object, all permission-filtered."""

from __future__ import annotations

import inspect
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query
from sqlalchemy import Integer

from crm.access import get_record, model_for, view
from crm.fields import CHOICES
from crm.queries import FILTERABLE, MAX_LIMIT, SORTABLE, list_records
from serving.api.deps import CurrentPrincipal, SessionDep
from serving.api.errors import COMMON_RESPONSES
from serving.api.routing import StrictQueryRoute
from serving.api.schemas.records import PLURALS, PUBLIC, page_model

router = APIRouter(route_class=StrictQueryRoute, prefix="/v1", responses=COMMON_RESPONSES)
MAX_ID = 2**31 - 1
RecordId = Annotated[int, Path(ge=1, le=MAX_ID, description="Record id")]


def _filter_param(obj: str, field: str) -> inspect.Parameter:
    column = model_for(obj).__table__.columns[field]
    choices = CHOICES.get((obj, field))
    if isinstance(column.type, Integer):
        annotation: Any = Annotated[int | None, Query(ge=1, le=MAX_ID)]
    elif choices:
        choice_type: Any = Literal.__getitem__(choices)
        annotation = Annotated[choice_type | None, Query()]
    else:
        annotation = Annotated[str | None, Query(max_length=getattr(column.type, "length", None) or 200)]
    return inspect.Parameter(field, inspect.Parameter.KEYWORD_ONLY, default=None, annotation=annotation)


def _add_object_routes(obj: str) -> None:
    plural = PLURALS[obj]
    sorts = tuple(SORTABLE[obj]) + tuple("-" + s for s in SORTABLE[obj])
    sort_type: Any = Literal.__getitem__(sorts)
    filter_names = FILTERABLE[obj]

    def list_handler(principal: CurrentPrincipal, session: SessionDep, **params: Any) -> Any:
        filters = {f: params.get(f) for f in filter_names}
        page = list_records(session, principal, obj, filters=filters, q=params.get("q"),
                            sort=params.get("sort") or "id", cursor=params.get("cursor"),
                            limit=params.get("limit") or 50)
        return {"items": page.items, "next_cursor": page.next_cursor}

    params = [
        inspect.Parameter("principal", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=CurrentPrincipal),
        inspect.Parameter("session", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=SessionDep),
        inspect.Parameter("q", inspect.Parameter.KEYWORD_ONLY, default=None, annotation=Annotated[
            str | None, Query(max_length=500, description="Text search: every word must appear")]),
        inspect.Parameter("sort", inspect.Parameter.KEYWORD_ONLY, default="id", annotation=Annotated[
            sort_type, Query(description="Field to order by; prefix '-' for descending")]),
        inspect.Parameter("cursor", inspect.Parameter.KEYWORD_ONLY, default=None, annotation=Annotated[
            str | None, Query(max_length=500, description="next_cursor of the previous page")]),
        inspect.Parameter("limit", inspect.Parameter.KEYWORD_ONLY, default=50, annotation=Annotated[
            int, Query(ge=1, le=MAX_LIMIT)]),
        *(_filter_param(obj, f) for f in filter_names),
    ]
    list_handler.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
    list_handler.__name__ = f"list_{plural}"
    router.add_api_route(f"/{plural}", list_handler, methods=["GET"], response_model=page_model(obj),
                         response_model_exclude_unset=True, summary=f"List {plural}", tags=[plural],
                         responses={422: {"description": "Bad filter, sort or cursor"}})

    def get_handler(record_id: RecordId, principal: CurrentPrincipal, session: SessionDep) -> Any:
        return view(principal, obj, get_record(session, principal, obj, record_id))

    get_handler.__name__ = f"get_{obj}"
    router.add_api_route(f"/{plural}/{{record_id}}", get_handler, methods=["GET"], response_model=PUBLIC[obj],
                         response_model_exclude_unset=True, summary=f"Get one {obj}", tags=[plural])


for _obj in PUBLIC:
    _add_object_routes(_obj)
