"""A route class that rejects unknown query parameters, so a typo never silently widens a query."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import Request, Response
from fastapi.dependencies.models import Dependant
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute


class StrictQueryRoute(APIRoute):
    """``?stagee=won`` gets a 422 naming the unknown parameter instead of returning everything."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        """Wrap the handler with the query-name check."""
        handler = super().get_route_handler()
        allowed = _query_names(self.dependant)

        async def strict_handler(request: Request) -> Response:
            unknown = sorted(set(request.query_params.keys()) - allowed)
            if unknown:
                raise RequestValidationError([{
                    "loc": ("query", unknown[0]), "type": "extra_forbidden", "input": request.query_params[unknown[0]],
                    "msg": f"unknown query parameter '{unknown[0]}'"
                           + (f"; allowed: {', '.join(sorted(allowed))}" if allowed else "; this endpoint takes none"),
                }])
            return await handler(request)

        return strict_handler


def _query_names(dependant: Dependant) -> set[str]:
    names = {p.alias for p in dependant.query_params}
    for sub in dependant.dependencies:
        names |= _query_names(sub)
    return names
