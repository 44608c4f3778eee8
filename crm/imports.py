"""CSV import of accounts and contacts: each good row becomes an approved proposal, bad rows are reported."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.orm import Session

from crm import proposals
from crm.access import Principal, check_writable, writable_fields
from crm.errors import CRMError, InvalidInput

IMPORTABLE = ("account", "contact")
MAX_ROWS = 50_000


@dataclass
class ImportReport:
    """What happened to each row of the file."""

    imported: int = 0
    created_ids: list[int] = field(default_factory=list)
    skipped: list[dict[str, Any]] = field(default_factory=list)


def import_csv(session: Session, principal: Principal, obj: str, data: bytes) -> ImportReport:
    """Import rows of ``obj``; the uploader is the person approving each create.

    Every row runs in its own savepoint, so a bad row is skipped with its line number and reason
    and the rest of the file still lands. Unknown columns make the whole file invalid, since they
    usually mean a wrong file or a header typo that would silently drop data.
    """
    if obj not in IMPORTABLE:
        raise InvalidInput(f"import supports {', '.join(IMPORTABLE)}")
    check_writable(principal, obj, None)
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise InvalidInput("the file is not UTF-8 text; save it as CSV UTF-8") from None
    # newline="" lets the csv module see bare CR / CRLF itself (quoted cells may hold line breaks).
    # strict: a stray quote is reported, not silently glued into a cell.
    reader = csv.DictReader(io.StringIO(text.replace("\x00", ""), newline=""), strict=True)
    try:
        header = [h.strip() for h in (reader.fieldnames or []) if h is not None]
    except csv.Error as exc:
        raise InvalidInput(f"the header row is not valid CSV: {exc}") from None
    if not header:
        raise InvalidInput("the file has no header row")
    allowed = writable_fields(obj) - {"owner_id"}
    unknown = [h for h in header if h and h not in allowed]
    if unknown:
        raise InvalidInput(f"unknown columns for {obj}: {', '.join(unknown[:10])}; "
                           f"allowed: {', '.join(sorted(allowed))}")
    report = ImportReport()
    for count, (line, row, syntax_error) in enumerate(_rows(reader), start=1):
        if syntax_error is not None:
            report.skipped.append({"line": line, "error": syntax_error})
            break
        if count > MAX_ROWS:
            report.skipped.append({"line": line, "error": f"file has more than {MAX_ROWS} rows; rest not read"})
            break
        if None in row:
            report.skipped.append({"line": line, "error": "more cells than header columns"})
            continue
        values = {k.strip(): _cell(k.strip(), v) for k, v in row.items() if k and v not in (None, "")}
        try:
            with session.begin_nested():
                p = proposals.propose(session, principal, object_type=obj, action="create", changes=values,
                                      reason="CSV import", source="user", bulk=False,
                                      idempotency_key=None)
                proposals.approve(session, principal, p.id)
            report.imported += 1
            report.created_ids.append(p.record_id or 0)
        except CRMError as exc:
            report.skipped.append({"line": line, "error": exc.message})
    return report


def _rows(reader: csv.DictReader[str]) -> Iterator[tuple[int, dict[str, Any], str | None]]:
    """(line the row ends on, row, None); a row the csv module cannot parse ends the file as (line, {}, error)."""
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            # The reader's position after a syntax error is unreliable, so nothing after it is guessed at.
            error = f"malformed CSV ({exc}); this row and the rest of the file were not read"
            yield reader.line_num + 1, {}, error
            return
        yield reader.line_num, row, None


def _cell(column: str, value: str) -> Any:
    value = value.strip()
    if column in ("employees", "account_id") and value.lstrip("-").isdigit():
        return int(value)
    if column == "annual_revenue":
        return value.replace(",", "")
    return value
