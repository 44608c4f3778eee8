"""The chain's head, checkpointed outside the database: a keyed MAC of (seq, hash) in a file.

The hash chain alone shows an edited or removed row in the middle, but not a removed tail, a database
restored from an older copy, or a chain rewritten from scratch: each of those still links up. The anchor
remembers the last committed head; verify then checks that the table still holds that row with that hash.

- The anchor advances after every commit that appended rows, only forward, and only while the row it
  names still has its hash, so once the chain was rolled back or replaced the anchor stays on the old
  head and verify keeps failing until an operator re-anchors (``crmind ledger anchor``).
- A first anchor is written by itself only for a new ledger (the commit that wrote its first row); an
  existing ledger without one is anchored by ``crmind ledger anchor`` after a clean verify.
- The MAC key is ``CRMIND_LEDGER_ANCHOR_KEY`` or a random key in the anchor folder; without the key the
  anchor cannot be forged, only deleted or replaced by an older anchor file.
"""

from __future__ import annotations

import fcntl
import hashlib
import hmac
import json
import logging
import os
import secrets
import threading
import time
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event, func, or_, select
from sqlalchemy.orm import Session

from config.db import RELAXED_COMMIT
from config.settings import get_settings
from ledger.models import Decision

log = logging.getLogger(__name__)
_PENDING = "ledger_anchor"  # session.info key: this transaction appended (value: it wrote the genesis row)
_CHAIN = "ledger_anchor_chain"  # session.info key: (first row's predecessor, last row), or False (a savepoint)


class AnchorError(Exception):
    """The anchor file exists but cannot be trusted (bad MAC, unreadable)."""


@dataclass(frozen=True)
class Anchor:
    """The last head checkpointed for one database."""

    database: str
    seq: int
    hash: str
    written_at: str


def database_identity(engine: Engine) -> str:
    """Which database a ledger lives in (no password): one anchor file per database."""
    url = engine.url
    if url.get_backend_name() == "sqlite":
        return "sqlite:" + str(Path(url.database or ":memory:").resolve())
    # The driver is not part of the identity: postgresql:// and postgresql+psycopg:// name one database.
    return url.set(drivername=url.get_backend_name(), password=None).render_as_string(hide_password=True)


def anchor_dir() -> Path:
    """The configured anchor folder (default ``<data_dir>/ledger-anchor``)."""
    s = get_settings()
    return Path(s.ledger_anchor_dir) if s.ledger_anchor_dir else Path(s.data_dir) / "ledger-anchor"


def _identity(engine: Engine) -> str:
    """``database_identity``, once per engine (resolving a SQLite path costs a few syscalls per commit)."""
    known = _identities.get(engine)
    if known is None:
        known = _identities[engine] = database_identity(engine)
    return known


def anchor_path(engine: Engine) -> Path:
    """The anchor file of ``engine``'s database."""
    digest = hashlib.sha256(_identity(engine).encode()).hexdigest()[:16]
    return anchor_dir() / f"{digest}.json"


_SLOT = 512  # one disk sector: a write of this size at offset 0 lands whole or not at all
_identities: weakref.WeakKeyDictionary[Engine, str] = weakref.WeakKeyDictionary()
# Per process: the anchor file's bytes as this process last read or wrote them, and the anchor they hold,
# so the advance after every ledger commit re-checks the MAC only when another process moved the anchor.
_last_seen: dict[Path, tuple[bytes, Anchor]] = {}


def _key() -> bytes:
    configured = get_settings().ledger_anchor_key
    if configured:
        return configured.encode()
    path = anchor_dir() / "anchor.key"
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        for _ in range(50):  # another process may be between creating the file and writing the key
            key = path.read_bytes().strip()
            if key:
                return key
            time.sleep(0.01)
        raise AnchorError(f"the ledger anchor key {path} is empty") from None
    with os.fdopen(fd, "w") as f:
        f.write(secrets.token_hex(32))
        f.flush()
        os.fsync(f.fileno())
    return path.read_bytes().strip()


def _mac(database: str, seq: int, head: str) -> str:
    body = json.dumps({"database": database, "seq": seq, "hash": head}, sort_keys=True).encode()
    return hmac.new(_key(), body, hashlib.sha256).hexdigest()


def read_anchor(engine: Engine) -> Anchor | None:
    """The anchor of ``engine``'s database, None if there is none; ``AnchorError`` if it was altered.

    Read under the shared lock, so a concurrent in-place write is never seen half done.
    """
    path = anchor_path(engine)
    try:
        lock = open(path.with_suffix(".lock"), "a")  # noqa: SIM115 (closed below, after the read)
    except OSError:  # no anchor folder yet, or a read-only view of it (an auditor's): nothing writes there
        return _parse(engine, path, _read_bytes(path))
    with lock:
        fcntl.flock(lock, fcntl.LOCK_SH)
        return _parse(engine, path, _read_bytes(path))


def _read_bytes(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise AnchorError(f"the ledger anchor {path} is unreadable ({exc})") from None


def _parse(engine: Engine, path: Path, raw: bytes | None) -> Anchor | None:
    if raw is None:
        return None
    try:
        data: dict[str, Any] = json.loads(raw)
        anchor = Anchor(database=data["database"], seq=int(data["seq"]), hash=str(data["hash"]),
                        written_at=str(data.get("written_at", "")))
        mac = str(data["mac"])
    except (ValueError, KeyError, TypeError) as exc:
        raise AnchorError(f"the ledger anchor {path} is unreadable ({exc})") from None
    if anchor.database != _identity(engine) or not hmac.compare_digest(
            mac, _mac(anchor.database, anchor.seq, anchor.hash)):
        raise AnchorError(f"the ledger anchor {path} does not carry a valid MAC (altered, or another key)")
    return anchor


def _write(engine: Engine, seq: int, head: str, *, durable: bool = True) -> Anchor:
    """Write the anchor (the caller holds the exclusive lock).

    The file is one JSON document padded with spaces to one sector, rewritten in place: no new inode, rename
    or directory update per commit. It is flushed to disk exactly as durably as the rows it names: with
    ``fdatasync`` after a durable PostgreSQL commit; not on SQLite, whose commits (WAL, ``synchronous=NORMAL``)
    are not flushed either, nor after a relaxed commit (``transaction(durable=False)``), so the anchor is never
    more durable than the chain's head.
    """
    path = anchor_path(engine)
    database = _identity(engine)
    anchor = Anchor(database=database, seq=seq, hash=head, written_at=datetime.now(UTC).isoformat())
    body = json.dumps({**anchor.__dict__, "mac": _mac(database, seq, head)}).encode()
    data = body.ljust(_SLOT) if len(body) < _SLOT else body
    durable = durable and engine.url.get_backend_name() != "sqlite"
    try:
        in_place = len(data) == _SLOT and path.stat().st_size == _SLOT
    except FileNotFoundError:
        in_place = False
    if in_place:
        fd = os.open(path, os.O_WRONLY)
        try:
            os.pwrite(fd, data, 0)
            if durable:
                os.fdatasync(fd)
        finally:
            os.close(fd)
    else:  # a new anchor, or one written by an older crmind: create it whole, then rename it into place
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        with tmp.open("wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    _last_seen[path] = (data, anchor)
    return anchor


def _current(engine: Engine) -> Anchor | None:
    """The anchor (the caller holds the lock): parsed and MAC-checked only when its bytes changed."""
    path = anchor_path(engine)
    raw = _read_bytes(path)
    if raw is None:
        _last_seen.pop(path, None)
        return None
    seen = _last_seen.get(path)
    if seen is not None and seen[0] == raw:
        return seen[1]
    anchor = _parse(engine, path, raw)
    if anchor is not None:
        _last_seen[path] = (raw, anchor)
    return anchor


@contextmanager
def _locked(engine: Engine) -> Iterator[None]:
    """One anchor writer at a time across processes (API workers, CLI, follower)."""
    path = anchor_path(engine)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_suffix(".lock"), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


_readers: weakref.WeakKeyDictionary[Engine, Engine] = weakref.WeakKeyDictionary()
_readers_lock = threading.Lock()


def _reader(engine: Engine) -> Engine:
    """A one-connection engine of its own for the anchor's reads, which run after a commit.

    ``advance`` runs in the committing session's ``after_commit``, while that session still holds its pooled
    connection. Reading the head through the same pool deadlocked under load: every pooled connection was
    held by a request waiting to advance the anchor, and the one holding the anchor's lock waited for a
    connection (SQLite, 50 concurrent users: all requests stuck for the 30 s pool timeout). The reads are
    serialised by ``_locked``, so one connection is enough.
    """
    if engine.url.get_backend_name() == "sqlite" and engine.url.database in (None, "", ":memory:"):
        return engine  # a private in-memory database is reachable only through its own engine
    with _readers_lock:
        reader = _readers.get(engine)
        if reader is None:
            args = {"connect_args": {"check_same_thread": False}} \
                if engine.url.get_backend_name() == "sqlite" else {"pool_pre_ping": True}
            reader = create_engine(engine.url, pool_size=1, max_overflow=0, **args)
            _readers[engine] = reader
            event.listen(engine, "engine_disposed", lambda _e, r=reader: r.dispose())
        return reader


def _head(engine: Engine, *, anchored: int | None = None) -> tuple[tuple[int, str] | None, str | None]:
    """The committed head (seq, hash), and the hash now at the ``anchored`` seq: one query, both by primary key."""
    newest = select(func.max(Decision.seq)).scalar_subquery()
    wanted = Decision.seq == newest if anchored is None else or_(Decision.seq == newest, Decision.seq == anchored)
    with _reader(engine).connect() as conn:  # Core, not a Session: this runs after every ledger commit
        rows = {int(seq): str(h) for seq, h in conn.execute(select(Decision.seq, Decision.hash).where(wanted))}
    if not rows:
        return None, None
    top = max(rows)
    return (top, rows[top]), None if anchored is None else rows.get(anchored)


def advance(engine: Engine, *, new_ledger: bool = False, durable: bool = True,
            appended: tuple[tuple[int, str] | None, tuple[int, str]] | None = None) -> Anchor | None:
    """Move the anchor to the committed head, if the anchored row is still intact; returns the anchor kept.

    ``new_ledger``: the caller's commit wrote the chain's first row, so a missing anchor may be created.
    ``durable``: the commit waited for the disk, so the anchor does too.
    ``appended``: the committed transaction's first predecessor and last row. When that predecessor is the
    anchored row, the transaction read it intact under the write lock and linked its rows to it, so its last
    row is a committed head that follows the anchor: written without a query (one commit's worth of work).
    """
    with _locked(engine):
        current = _current(engine)
        if current is None and not new_ledger:
            return None  # an existing ledger is anchored by `crmind ledger anchor` after a clean verify
        if appended is not None and current is not None and appended[0] == (current.seq, current.hash):
            return _write(engine, *appended[1], durable=durable)
        head, at_anchor = _head(engine, anchored=None if current is None else current.seq)
        if head is None:
            return current
        if current is None:
            return _write(engine, *head) if new_ledger else None
        if head[0] <= current.seq:
            return current
        if at_anchor != current.hash:
            log.error("ledger anchor kept at seq %s: that row was removed or changed (tail removed, database "
                      "restored or chain replaced); run `crmind ledger verify`", current.seq)
            return current
        return _write(engine, *head, durable=durable)


def reanchor(engine: Engine) -> Anchor | None:
    """Anchor the current head unconditionally (an operator's decision after a deliberate restore).

    The previous anchor file is kept beside it, renamed with the time, for the audit trail.
    """
    with _locked(engine):
        _set_aside(anchor_path(engine))
        head, _ = _head(engine)
        return None if head is None else _write(engine, *head)


def _set_aside(path: Path) -> Path | None:
    """Rename an anchor file out of the way, keeping it (with the time in its name) for the audit trail."""
    if not path.exists():
        return None
    aside = path.with_suffix(f".replaced-{datetime.now(UTC):%Y%m%dT%H%M%S%f}.json")
    os.replace(path, aside)
    return aside


@contextmanager
def replacing_chain(engine: Engine) -> Iterator[None]:
    """Set the old anchor aside around a deliberate replacement of the whole ledger (``crmind demo --reset``).

    The new chain's first commit then anchors afresh, instead of being reported, on every commit, as a removed
    tail. If the replacement fails, the old anchor is put back: the old chain is still there.
    """
    path = anchor_path(engine)
    with _locked(engine):
        aside = _set_aside(path)
    try:
        yield
    except BaseException:
        with _locked(engine):
            if aside is not None and not path.exists():
                os.replace(aside, path)
        raise


def mark_appended(session: Session, *, prev: tuple[int, str] | None, row: tuple[int, str], nested: bool) -> None:
    """Called by ``append`` for each row: advance the anchor once this session's transaction commits.

    ``row`` and ``prev`` (its predecessor) are (``seq``, ``hash``). The transaction's first predecessor and last
    row are kept, so that ``advance`` can skip its head query in the usual case. Rows appended inside a savepoint
    may be rolled back without the transaction, so a transaction that used one takes the query.
    """
    session.info[_PENDING] = bool(session.info.get(_PENDING)) or prev is None
    chain = session.info.get(_CHAIN)
    if nested or chain is False:
        session.info[_CHAIN] = False
    else:
        session.info[_CHAIN] = (prev if chain is None else chain[0], row)


@event.listens_for(Session, "after_commit")
def _after_commit(session: Session) -> None:
    # A released savepoint fires this too, while its enclosing transaction is still open: the rows it
    # appended are not committed yet, so the anchor waits for the outermost commit.
    if _PENDING not in session.info or session.in_nested_transaction():
        return
    new_ledger = session.info.pop(_PENDING)
    chain = session.info.pop(_CHAIN, None)
    bind = session.get_bind()
    engine = bind if isinstance(bind, Engine) else bind.engine
    try:
        advance(engine, new_ledger=new_ledger, durable=not session.info.get(RELAXED_COMMIT, False),
                appended=chain or None)
    except (OSError, AnchorError):
        # The commit stands; verify reports the anchor's problem. A crash here only leaves the anchor behind.
        log.exception("could not advance the ledger anchor")


@event.listens_for(Session, "after_rollback")
def _after_rollback(session: Session) -> None:
    if not session.in_transaction():
        session.info.pop(_PENDING, None)
        session.info.pop(_CHAIN, None)
