"""Translate typed errors into HTTP responses, once, at the edge."""

from __future__ import annotations

import logging
import re

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy.exc import DBAPIError, IntegrityError
from starlette.exceptions import HTTPException as StarletteHTTPException

from config.errors import CrmindError

log = logging.getLogger("crmind.api")


class ErrorBody(BaseModel):
    """An error a person can act on."""

    detail: str


COMMON_RESPONSES: dict[int | str, dict[str, object]] = {
    400: {"model": ErrorBody, "description": "Malformed request (e.g. a broken multipart body)"},
    401: {"model": ErrorBody, "description": "Missing or unknown bearer token"},
    403: {"model": ErrorBody, "description": "Not allowed for this role"},
    404: {"model": ErrorBody, "description": "Not found, or not visible to you"},
}


def install(app: FastAPI) -> None:
    """Register the handlers on ``app``."""

    @app.exception_handler(CrmindError)
    async def domain_error(_: Request, exc: CrmindError) -> JSONResponse:
        code = exc.status
        if code == 422:
            # Same shape as FastAPI's own validation errors, so one schema describes every 422.
            return JSONResponse({"detail": [{"loc": ["body"], "msg": exc.message, "type": "invalid_input"}]}, 422)
        return JSONResponse({"detail": exc.message}, code)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        headers = dict(exc.headers or {})
        if exc.status_code == 405:
            # Starlette names only the first route that matched the path; list every method it has.
            headers["Allow"] = ", ".join(_methods_for(app, request.url.path))
        return JSONResponse({"detail": exc.detail}, exc.status_code, headers=headers)

    @app.exception_handler(IntegrityError)
    async def integrity(_: Request, exc: IntegrityError) -> JSONResponse:
        log.warning("integrity error: %s", exc.orig)
        return JSONResponse({"detail": "the change conflicts with existing data (duplicate or missing link)"}, 409)

    @app.exception_handler(DBAPIError)
    async def db_error(_: Request, exc: DBAPIError) -> JSONResponse:
        log.warning("database refused the request: %s", exc.orig)
        return JSONResponse({"detail": [{"loc": ["query"], "msg": "a value is out of range for the database",
                                         "type": "invalid_input"}]}, 422)


def _methods_for(app: FastAPI, path: str) -> list[str]:
    """Every method the OpenAPI document lists for ``path``."""
    paths = app.openapi().get("paths", {})
    if path in paths:  # a literal path (/v1/rules/compile) is its own resource, not an id of /v1/rules/{id}
        return sorted(m.upper() for m in paths[path])
    methods: set[str] = set()
    for template, ops in paths.items():
        if re.fullmatch(re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(template)), path):
            methods |= {m.upper() for m in ops}
    return sorted(methods)
