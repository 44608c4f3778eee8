"""The decision record: append-only, hash-chained rows that answer "why"."""

from ledger.anchor import reanchor
from ledger.models import Decision, DecisionRef
from ledger.query import decisions_for, trace, verify
from ledger.record import append, append_now, erase_matching, hold_write_lock, replay_at, set_outcome

__all__ = ["Decision", "DecisionRef", "append", "append_now", "erase_matching", "hold_write_lock", "reanchor",
           "replay_at", "set_outcome", "decisions_for", "trace", "verify"]
