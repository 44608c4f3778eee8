"""Where conversations are kept: one factory for the LangGraph checkpointer, and the data-subject scrub.

SQLite (the default) keeps checkpoints in ``<data dir>/checkpoints.db``; when ``CRMIND_DATABASE_URL`` is
PostgreSQL they go to the same database (LangGraph's own ``checkpoints*`` tables). A conversation survives a
process restart, with a pending approval still pending.

``scrub_threads`` rewrites stored checkpoints in place with a data subject's name, phone and email replaced. It
works on the savers' tables directly (there is no LangGraph API for it): every serialized value is decoded with
the saver's own serializer, scrubbed field by field, and encoded again, so conversations stay resumable.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import re
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from langgraph.checkpoint.base import BaseCheckpointSaver
from pydantic import BaseModel

from config.settings import get_settings

Saver = BaseCheckpointSaver[Any]
_BATCH = 500
_open: dict[str, Saver] = {}
_lock = threading.Lock()


def _is_postgres(url: str) -> bool:
    return url.startswith(("postgresql://", "postgresql+psycopg://", "postgres://"))


def _target(target: str | Path | None) -> str:
    """The checkpoint store for ``target``: a PostgreSQL URL, or a SQLite file path."""
    if target is not None:
        return str(target)
    settings = get_settings()
    if _is_postgres(settings.database_url):
        return settings.database_url
    return str(settings.data_dir / "checkpoints.db")


def open_checkpointer(target: str | Path | None = None, *, setup: bool = True) -> Saver:
    """A new checkpointer: PostgreSQL for a ``postgresql://`` URL, else SQLite at a path (default from settings).

    The caller owns it and closes it with ``close_checkpointer``; ``get_checkpointer`` gives the shared one.
    ``setup`` creates or migrates the tables. On PostgreSQL the first setup builds indexes ``CONCURRENTLY``, which
    waits for every open transaction in the database: never set up while holding one (the erase path does not).
    """
    where = _target(target)
    if _is_postgres(where):
        from langgraph.checkpoint.postgres import PostgresSaver
        from psycopg.rows import dict_row
        from psycopg_pool import ConnectionPool

        conninfo = "postgresql://" + where.split("://", 1)[1]
        # Checkpoints commit without waiting for the WAL flush (a durable commit cost ~12 ms here, several per run):
        # an application crash loses nothing, a database crash at most the last fraction of a second of
        # conversation state. The ledger and the CRM, which hold decisions and changes, keep durable commits.
        pool: ConnectionPool[Any] = ConnectionPool(
            conninfo, min_size=1, max_size=4, open=True,
            kwargs={"autocommit": True, "prepare_threshold": 0, "row_factory": dict_row,
                    "options": "-c synchronous_commit=off"})
        saver: Saver = PostgresSaver(pool)
    else:
        from langgraph.checkpoint.sqlite import SqliteSaver

        if where != ":memory:":
            Path(where).parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(where, check_same_thread=False)  # the saver serialises access with its lock
        conn.execute("PRAGMA busy_timeout=10000")
        # Overwrite freed pages, so a scrubbed or deleted conversation leaves no old bytes in the file.
        conn.execute("PRAGMA secure_delete=ON")
        # WAL (set by the saver) with NORMAL sync: a commit survives a process crash without an fsync each step.
        conn.execute("PRAGMA synchronous=NORMAL")
        saver = SqliteSaver(conn)
    if setup:
        saver.setup()  # type: ignore[attr-defined]
    return saver


def close_checkpointer(saver: Saver) -> None:
    """Close a checkpointer's connection (SQLite) or pool (PostgreSQL)."""
    conn = getattr(saver, "conn", None)
    if conn is not None:
        conn.close()
    with _lock:
        for key in [k for k, v in _open.items() if v is saver]:
            del _open[key]


def get_checkpointer(target: str | Path | None = None) -> Saver:
    """The process-wide checkpointer of ``target`` (default: from settings), opened once."""
    where = _target(target)
    with _lock:
        saver = _open.get(where)
        if saver is None:
            saver = _open[where] = open_checkpointer(where)
        return saver


def close_all() -> None:
    """Close every shared checkpointer (tests, shutdown)."""
    for saver in list(_open.values()):
        close_checkpointer(saver)


# ---------------------------------------------------------------- data-subject scrub
def scrubbed(value: Any, pattern: re.Pattern[str], replacement: str) -> Any:
    """``value`` with ``pattern`` replaced in every string it holds: dicts, lists, messages, dataclasses."""
    if isinstance(value, str):
        return pattern.sub(replacement, value)
    if isinstance(value, dict):
        return {scrubbed(k, pattern, replacement): scrubbed(v, pattern, replacement) for k, v in value.items()}
    if isinstance(value, list):
        return [scrubbed(v, pattern, replacement) for v in value]
    if isinstance(value, tuple):
        items = [scrubbed(v, pattern, replacement) for v in value]
        return type(value)(*items) if hasattr(value, "_fields") else tuple(items)
    if isinstance(value, set | frozenset):
        return type(value)(scrubbed(v, pattern, replacement) for v in value)
    if isinstance(value, BaseModel):  # LangChain messages
        update = {name: scrubbed(getattr(value, name), pattern, replacement) for name in type(value).model_fields}
        return value.model_copy(update=update)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):  # langgraph Interrupt and the like
        out = copy.copy(value)
        for f in dataclasses.fields(value):
            object.__setattr__(out, f.name, scrubbed(getattr(value, f.name), pattern, replacement))
        return out
    return value


def _mentions(raw: bytes | str | None, pattern: re.Pattern[str]) -> bool:
    """Cheap test on the stored bytes: serializers keep strings as UTF-8 runs, so a match shows in them."""
    if raw is None:
        return False
    text = raw if isinstance(raw, str) else bytes(raw).decode("utf-8", "ignore")
    return bool(pattern.search(text))


def scrub_threads(pattern: re.Pattern[str], replacement: str, *, saver: Saver | None = None) -> int:
    """Replace ``pattern`` in every stored conversation and checkpoint; returns how many threads changed.

    Called by the data-subject erase (``agents.privacy.erase_contact``) with the pattern ``crm.privacy`` built
    from the contact's name, phone and email (raw and masked forms).
    """
    if saver is None:
        where = _target(None)
        with _lock:
            shared = _open.get(where)
        if shared is None:  # nobody here has used the store: scrub it without creating tables (see setup)
            own = open_checkpointer(where, setup=False)
            try:
                return scrub_threads(pattern, replacement, saver=own)
            finally:
                close_checkpointer(own)
        saver = shared
    from langgraph.checkpoint.sqlite import SqliteSaver

    if isinstance(saver, SqliteSaver):
        return _scrub_sqlite(saver, pattern, replacement)
    from langgraph.checkpoint.postgres import PostgresSaver

    if isinstance(saver, PostgresSaver):
        return _scrub_postgres(saver, pattern, replacement)
    raise TypeError(f"no scrub for {type(saver).__name__}; use the SQLite or PostgreSQL checkpointer")


def _typed(saver: Saver, type_: str, blob: bytes, pattern: re.Pattern[str], replacement: str) -> tuple[str, bytes]:
    value = saver.serde.loads_typed((type_, bytes(blob)))
    return saver.serde.dumps_typed(scrubbed(value, pattern, replacement))


def _scrub_sqlite(saver: Any, pattern: re.Pattern[str], replacement: str) -> int:
    threads: set[str] = set()
    with saver.lock:
        tables = {r[0] for r in saver.conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    if not {"checkpoints", "writes"} <= tables:
        return 0
    with saver.cursor() as cur:  # one transaction, under the saver's lock
        for rowid, thread, type_, blob, meta in _batches(
                cur, "SELECT rowid, thread_id, type, checkpoint, metadata FROM checkpoints"):
            if not (_mentions(blob, pattern) or _mentions(meta, pattern)):
                continue
            new_type, new_blob = _typed(saver, type_, blob, pattern, replacement)
            new_meta = json.dumps(scrubbed(json.loads(meta or b"{}"), pattern, replacement),
                                  ensure_ascii=False).encode()
            cur.execute("UPDATE checkpoints SET type = ?, checkpoint = ?, metadata = ? WHERE rowid = ?",
                        (new_type, new_blob, new_meta, rowid))
            threads.add(thread)
        for rowid, thread, type_, blob in _batches(cur, "SELECT rowid, thread_id, type, value FROM writes"):
            if _mentions(blob, pattern):
                new_type, new_blob = _typed(saver, type_, blob, pattern, replacement)
                cur.execute("UPDATE writes SET type = ?, value = ? WHERE rowid = ?", (new_type, new_blob, rowid))
                threads.add(thread)
    if threads:  # fold the write-ahead log (which still holds the old pages) back into the file, and empty it
        with saver.lock:
            saver.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return len(threads)


def _batches(cur: sqlite3.Cursor, select: str) -> Iterator[tuple[Any, ...]]:
    last = 0
    while True:
        rows = cur.execute(f"{select} WHERE rowid > ? ORDER BY rowid LIMIT {_BATCH}", (last,)).fetchall()
        if not rows:
            return
        yield from rows
        last = rows[-1][0]


def _scrub_postgres(saver: Any, pattern: re.Pattern[str], replacement: str) -> int:
    from psycopg.types.json import Jsonb

    threads: set[str] = set()
    with saver.conn.connection() as conn, conn.transaction(), conn.cursor() as cur:
        cur.execute("SELECT to_regclass('checkpoint_writes') IS NOT NULL AS ready")
        row = cur.fetchone()
        if not row or not row["ready"]:
            return 0
        for row in _pg_rows(conn, "SELECT thread_id, checkpoint_ns, checkpoint_id, checkpoint, metadata "
                                  "FROM checkpoints"):
            if pattern.search(json.dumps([row["checkpoint"], row["metadata"]], ensure_ascii=False)):
                cur.execute("UPDATE checkpoints SET checkpoint = %s, metadata = %s WHERE thread_id = %s AND "
                            "checkpoint_ns = %s AND checkpoint_id = %s",
                            (Jsonb(scrubbed(row["checkpoint"], pattern, replacement)),
                             Jsonb(scrubbed(row["metadata"], pattern, replacement)),
                             row["thread_id"], row["checkpoint_ns"], row["checkpoint_id"]))
                threads.add(row["thread_id"])
        for row in _pg_rows(conn, "SELECT thread_id, checkpoint_ns, channel, version, type, blob "
                                  "FROM checkpoint_blobs WHERE blob IS NOT NULL"):
            if _mentions(row["blob"], pattern):
                new_type, new_blob = _typed(saver, row["type"], row["blob"], pattern, replacement)
                cur.execute("UPDATE checkpoint_blobs SET type = %s, blob = %s WHERE thread_id = %s AND "
                            "checkpoint_ns = %s AND channel = %s AND version = %s",
                            (new_type, new_blob, row["thread_id"], row["checkpoint_ns"], row["channel"],
                             row["version"]))
                threads.add(row["thread_id"])
        for row in _pg_rows(conn, "SELECT thread_id, checkpoint_ns, checkpoint_id, task_id, idx, type, blob "
                                  "FROM checkpoint_writes"):
            if _mentions(row["blob"], pattern):
                new_type, new_blob = _typed(saver, row["type"], row["blob"], pattern, replacement)
                cur.execute("UPDATE checkpoint_writes SET type = %s, blob = %s WHERE thread_id = %s AND "
                            "checkpoint_ns = %s AND checkpoint_id = %s AND task_id = %s AND idx = %s",
                            (new_type, new_blob, row["thread_id"], row["checkpoint_ns"], row["checkpoint_id"],
                             row["task_id"], row["idx"]))
                threads.add(row["thread_id"])
    return len(threads)


def _pg_rows(conn: Any, select: str) -> Iterator[dict[str, Any]]:
    """Rows through a server-side cursor, so a large store is never held in memory at once."""
    with conn.cursor(name=f"scrub_{abs(hash(select))}") as scan:
        scan.itersize = _BATCH
        scan.execute(select)
        yield from scan
