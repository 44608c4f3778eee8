"""Data-subject erase across every store crmind keeps: the CRM, its ledger payloads, and the assistant's threads.

``crm.privacy.erase_contact`` builds the contact's erase pattern and scrubs the CRM and ledger; this layer passes
in the checkpoint scrubber, so the CRM never imports agents (import-linter keeps it so). The API route and the
CLI command call this function; nothing needs registering at import time, so no entry point can forget it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from sqlalchemy.orm import Session

from agents.checkpointer import Saver, scrub_threads
from crm import privacy
from crm.access import Principal


def erase_contact(session: Session, principal: Principal, contact_id: int, *,
                  saver: Saver | None = None, also: Mapping[str, privacy.Scrubber] | None = None) -> dict[str, Any]:
    """Erase a contact everywhere, in the caller's transaction; ``conversations_scrubbed`` counts threads changed.

    Conversations are scrubbed before the caller commits: if the CRM commit then fails, the erase is retried
    as a whole and the scrub (idempotent) runs again. ``also`` adds the scrubbers of stores above this layer
    (the serving layer passes the training sets' one, ``finetune.erase.erase_scrubber``).
    """

    def conversations(pattern: re.Pattern[str], replacement: str) -> int:
        return scrub_threads(pattern, replacement, saver=saver)

    return privacy.erase_contact(session, principal, contact_id,
                                 also={"conversations_scrubbed": conversations, **(also or {})})
