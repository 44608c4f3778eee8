"""Citations checked in code: ``[activity:842]`` or ``[chunk:activity:842#0]`` must name something a tool returned."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from config.objects import PLURALS

# One bracket may hold several references: "[activity:1, chunk:activity:2#0]".
_BRACKET = re.compile(r"\[\s*((?:chunk:)?[a-z]+:\d+(?:#\d+)?(?:\s*[,;]\s*(?:chunk:)?[a-z]+:\d+(?:#\d+)?)*)\s*\]")
_SPLIT = re.compile(r"\s*[,;]\s*")


@dataclass(frozen=True)
class Checked:
    """An answer after its citations were checked."""

    text: str
    citations: list[str]
    stripped: list[str]

    @property
    def grounded(self) -> bool:
        """True when the answer cites at least one thing retrieved in this turn."""
        return bool(self.citations)


def check(text: str, evidence: Iterable[str]) -> Checked:
    """Keep citations of retrieved records and chunks, strip the others (and the brackets left empty)."""
    known = set(evidence)
    kept: list[str] = []
    stripped: list[str] = []

    def replace(match: re.Match[str]) -> str:
        good = []
        for ref in _SPLIT.split(match.group(1)):
            if ref in known:
                good.append(ref)
                if ref not in kept:
                    kept.append(ref)
            elif ref not in stripped:
                stripped.append(ref)
        return f"[{', '.join(good)}]" if good else ""

    cleaned = _BRACKET.sub(replace, text)
    cleaned = re.sub(r"[ \t]+([.,;:!?。，；：！？])", r"\1", cleaned)
    cleaned = re.sub(r"[ \t]{2,}", " ", cleaned).strip()
    return Checked(text=cleaned, citations=kept, stripped=stripped)


def link(ref: str) -> str | None:
    """API path of a cited record or chunk's record (``/v1/activities/842``)."""
    obj, _, rest = ref.removeprefix("chunk:").partition(":")
    ident = rest.split("#", 1)[0]
    return f"/v1/{PLURALS[obj]}/{ident}" if obj in PLURALS and ident.isdigit() else None
