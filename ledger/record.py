"""Appending to the ledger inside the caller's transaction, so a decision and its effect commit together."""

from __future__ import annotations

import hashlib
import json
import re
import secrets
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select, text, update
from sqlalchemy.orm import Session

from config.db import RELAXED_COMMIT, transaction
from config.masking import mask_text
from config.objects import is_ref
from ledger.anchor import mark_appended
from ledger.models import Decision, DecisionRef

GENESIS = "0" * 64
_LOCK_KEY = 0x6C6564676572  # "ledger": serialises appends on PostgreSQL
_LOCK_HELD = "crmind.ledger_lock_transaction"  # session.info: the transaction that holds the lock
_LAST_APPENDED = "crmind.ledger_last_appended"  # session.info: (transaction, (seq, hash) of its last appended row)
_REPLAY_TS = "crmind.ledger_replay_ts"  # session.info: the time a replayed history stamps on its rows


def _canonical(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str).encode()


def payload_hash(salt: str, input_summary: str, output: dict[str, Any]) -> str:
    """What the chain commits to instead of the (erasable) payload."""
    return hashlib.sha256(salt.encode() + _canonical({"input_summary": input_summary, "output": output})).hexdigest()


def row_hash(row: Decision) -> str:
    """Hash of a row's content and its predecessor's hash (the tamper-evident chain)."""
    body: dict[str, Any] = {
        "id": row.id,
        "parent_id": row.parent_id,
        "ts": row.ts.isoformat(),
        "actor": row.actor,
        "kind": row.kind,
        "thread_id": row.thread_id,
        "evidence": row.evidence,
        "model_id": row.model_id,
        "prompt": row.prompt,
        "rule_id": row.rule_id,
        "latency_ms": None if row.latency_ms is None else round(row.latency_ms, 3),
        "tokens_in": row.tokens_in,
        "tokens_out": row.tokens_out,
        "prev_hash": row.prev_hash,
    }
    if row.payload_hash is None:  # a row written before payloads became erasable
        body.update(input_summary=row.input_summary, output=row.output)
    else:
        body["payload_hash"] = row.payload_hash
    return hashlib.sha256(_canonical(body)).hexdigest()


def _masked(value: Any) -> Any:
    """Phone numbers and email addresses masked in every string of a payload (nothing needs them back)."""
    if isinstance(value, str):
        return mask_text(value)
    if isinstance(value, dict):
        return {k: _masked(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_masked(v) for v in value]
    return value


def hold_write_lock(session: Session) -> None:
    """Serialise this transaction's ledger and outbox writes with every other writer's, until it ends.

    Sequence-numbered rows (ledger seq, outbox id) must become visible in number order: a consumer that
    has read up to id N never looks below N again. SQLite's single writer gives that for free; on
    PostgreSQL a transaction-scoped advisory lock, taken before the ids are drawn, does.
    """
    if session.get_bind().dialect.name != "postgresql":
        return
    transaction = session.get_transaction()
    if transaction is not None and session.info.get(_LOCK_HELD) is transaction:
        return  # already held: an erase emits dozens of outbox entries in one transaction
    # transaction(durable=False): SET LOCAL synchronous_commit = off, in the same round trip
    relax = ", set_config('synchronous_commit', 'off', true)" if session.info.get(RELAXED_COMMIT) else ""
    session.execute(text(f"SELECT pg_advisory_xact_lock(:k){relax}"), {"k": _LOCK_KEY})
    session.info[_LOCK_HELD] = session.get_transaction()


def append(
    session: Session,
    *,
    kind: str,
    actor: str,
    input_summary: str = "",
    output: dict[str, Any] | None = None,
    evidence: Iterable[str] = (),
    refs: Iterable[str] = (),
    parent_id: str | None = None,
    thread_id: str | None = None,
    model_id: str | None = None,
    prompt: str | None = None,
    rule_id: str | None = None,
    latency_ms: float | None = None,
    tokens_in: int | None = None,
    tokens_out: int | None = None,
    ts: datetime | None = None,
    decision_id: str | None = None,
) -> Decision:
    """Add one decision row in ``session``'s transaction; the caller commits.

    ``evidence`` holds record and chunk ids the decision used; ``refs`` the records it concerns
    (evidence record ids are indexed too, so a record's history includes answers that cited it).
    Every writer's payload passes through here: phones and emails are masked, and the chain commits to a
    salted hash of the payload, so ``erase_matching`` can later scrub names without breaking it.

    ``ts`` is only for replayed or imported history (``crmind drift simulate``, see ``replay_at``); live
    writers leave it to the clock. The chain is ordered by ``seq``, never by ``ts``. ``decision_id`` is for a
    caller that stores the row's id beside it before appending (a proposal); by default a new UUID.
    """
    hold_write_lock(session)
    stamp = ts or session.info.get(_REPLAY_TS) or datetime.now(UTC)
    evidence = list(evidence)
    summary = mask_text(input_summary[:4000])
    payload = _masked(output or {})
    salt = secrets.token_hex(16)
    row = Decision(
        id=decision_id or str(uuid.uuid4()),
        parent_id=parent_id,
        ts=stamp.astimezone(UTC).replace(tzinfo=None) if stamp.tzinfo else stamp,
        actor=actor,
        kind=kind,
        thread_id=thread_id,
        input_summary=summary,
        output=payload,
        payload_salt=salt,
        payload_hash=payload_hash(salt, summary, payload),
        evidence=evidence,
        model_id=model_id,
        prompt=prompt,
        rule_id=rule_id,
        latency_ms=None if latency_ms is None else round(latency_ms, 3),
        tokens_in=tokens_in,
        tokens_out=tokens_out,
        prev_hash=GENESIS,
        hash="",
    )
    transaction = session.get_nested_transaction() or session.get_transaction()
    nested = transaction is not None and transaction.nested
    last = session.info.get(_LAST_APPENDED)
    if last is not None and transaction is not None and last[0] is transaction and transaction.is_active:
        # This transaction appended the row before, and still holds the write lock it took then: nobody
        # else can append in between, so the predecessor is known and the row is inserted whole.
        _insert_after(session, row, last[1], nested)
    elif session.get_bind().dialect.name == "postgresql":
        # The advisory lock (hold_write_lock, above) admits one appender at a time, and every earlier holder
        # has committed: the newest row is the predecessor. Read it first and insert the row whole (one round
        # trip fewer than insert, read, update). A statement's snapshot starts with the statement, so this read,
        # after the lock's, sees every committed row (READ COMMITTED, the default).
        head = session.execute(select(Decision.seq, Decision.hash).order_by(Decision.seq.desc()).limit(1)).first()
        _insert_after(session, row, None if head is None else (int(head[0]), str(head[1])), nested)
    else:
        session.add(row)
        # Insert first: on SQLite the insert takes the write lock, so every row with a lower seq is
        # committed and the predecessor read below cannot change under us.
        session.flush()
        before = session.execute(
            select(Decision.seq, Decision.hash).where(Decision.seq < row.seq).order_by(Decision.seq.desc()).limit(1)
        ).first()
        prev = None if before is None else (int(before[0]), str(before[1]))
        row.prev_hash = GENESIS if prev is None else prev[1]
        row.hash = row_hash(row)
        mark_appended(session, prev=prev, row=(row.seq, row.hash), nested=nested)
    session.info[_LAST_APPENDED] = (transaction, (row.seq, row.hash))
    all_refs = {r for r in refs} | {e for e in evidence if is_ref(e)}
    session.add_all(DecisionRef(decision_seq=row.seq, ref=r) for r in sorted(all_refs))
    session.flush()
    return row


def _insert_after(session: Session, row: Decision, prev: tuple[int, str] | None, nested: bool) -> None:
    """Insert ``row`` whole, chained to ``prev`` (seq, hash; None: the first row), a predecessor known for sure."""
    row.prev_hash = GENESIS if prev is None else prev[1]
    row.hash = row_hash(row)
    session.add(row)
    session.flush()
    mark_appended(session, prev=prev, row=(row.seq, row.hash), nested=nested)


@contextmanager
def replay_at(session: Session, ts: datetime) -> Iterator[None]:
    """Stamp ``ts`` on every row ``session`` appends inside the block (replays and imports only).

    A replayed step calls domain functions (the model registry's promote, ``set_outcome``) that append rows of
    their own; this gives them the replayed time without a clock parameter on every one of them.
    """
    before = session.info.get(_REPLAY_TS)
    session.info[_REPLAY_TS] = ts
    try:
        yield
    finally:
        if before is None:
            session.info.pop(_REPLAY_TS, None)
        else:
            session.info[_REPLAY_TS] = before


def append_now(*, durable: bool = False, **kwargs: Any) -> Decision:
    """Append in a transaction of its own (for callers that have no session, e.g. the LLM gateway).

    Its callers record what a model was asked and said, not a change, so by default the commit does not wait
    for the disk (see ``config.db.transaction``).
    """
    with transaction(durable=durable) as session:
        return append(session, **kwargs)


def set_outcome(session: Session, decision_id: str, outcome: str, actor: str) -> Decision:
    """Record what became of a decision: sets the column and appends a hashed 'outcome' row."""
    done = session.execute(update(Decision).where(Decision.id == decision_id).values(outcome=outcome))
    if done.rowcount != 1:  # type: ignore[attr-defined]
        raise KeyError(decision_id)
    return append(session, kind="outcome", actor=actor, parent_id=decision_id,
                  input_summary=f"outcome of {decision_id}", output={"outcome": outcome})


def erase_matching(session: Session, pattern: re.Pattern[str], replacement: str, batch: int = 2000) -> int:
    """Scrub ``pattern`` (a data subject's name, phone, email) from every payload; returns rows changed.

    The chain still verifies: it commits to the payload's salted hash, and an erased row keeps that hash
    but loses its salt, so the old value can be neither read nor confirmed by guessing.
    """
    changed, last_seq = 0, 0
    while True:
        rows = list(session.scalars(
            select(Decision).where(Decision.seq > last_seq).order_by(Decision.seq).limit(batch)))
        if not rows:
            return changed
        for row in rows:
            last_seq = row.seq
            if row.payload_hash is None or not pattern.search(_canonical([row.input_summary, row.output]).decode()):
                continue
            row.input_summary = pattern.sub(replacement, row.input_summary)
            row.output = _scrubbed(row.output, pattern, replacement)
            row.payload_salt = None
            row.erased_at = datetime.now(UTC).replace(tzinfo=None)
            changed += 1
        session.flush()


def _scrubbed(value: Any, pattern: re.Pattern[str], replacement: str) -> Any:
    if isinstance(value, str):
        return pattern.sub(replacement, value)
    if isinstance(value, dict):
        return {pattern.sub(replacement, k): _scrubbed(v, pattern, replacement) for k, v in value.items()}
    if isinstance(value, list):
        return [_scrubbed(v, pattern, replacement) for v in value]
    return value
