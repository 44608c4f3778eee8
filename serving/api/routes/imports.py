"""CSV import endpoint for accounts and contacts."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, File, Path, UploadFile
from pydantic import BaseModel

from crm.errors import InvalidInput
from crm.imports import import_csv
from serving.api.deps import CurrentPrincipal, SessionDep
from serving.api.errors import COMMON_RESPONSES
from serving.api.routing import StrictQueryRoute

router = APIRouter(route_class=StrictQueryRoute, prefix="/v1/import", tags=["import"], responses=COMMON_RESPONSES)
MAX_BYTES = 10 * 1024 * 1024


class SkippedRow(BaseModel):
    """A row that was not imported, and why."""

    line: int
    error: str


class ImportResult(BaseModel):
    """Rows imported and rows skipped."""

    imported: int
    created_ids: list[int]
    skipped: list[SkippedRow]


@router.post("/{object_type}", response_model=ImportResult, summary="Import a CSV file")
async def import_file(object_type: Annotated[Literal["accounts", "contacts"], Path()],
                      file: Annotated[UploadFile, File(description="CSV, UTF-8, header row = field names")],
                      principal: CurrentPrincipal, session: SessionDep) -> Any:
    """Bad rows are skipped and reported with their line number; the rest of the file is imported."""
    data = await file.read(MAX_BYTES + 1)
    if len(data) > MAX_BYTES:
        raise InvalidInput("the file is larger than 10 MB; split it")
    report = import_csv(session, principal, object_type.removesuffix("s"), data)
    session.commit()
    return report
