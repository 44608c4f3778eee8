"""The sentence banks of both languages behind one shape, so story code never branches on language."""

from __future__ import annotations

from dataclasses import dataclass
from types import ModuleType

from crm.demo import text_en, text_zh


@dataclass(frozen=True)
class TextBank:
    """Sales-story sentences of one language (see ``text_en`` for the placeholders)."""

    openers: dict[str, tuple[str, ...]]
    sign_off: tuple[str, ...]
    stage_lines: dict[str, tuple[str, ...]]
    next_steps: tuple[str, ...]
    objections: tuple[str, ...]
    loss_reasons: tuple[str, ...]
    subjects: dict[str, tuple[str, ...]]
    kind_label: dict[str, str]
    account_notes: tuple[str, ...]
    sep: str  # between sentences: a space in English, nothing in Chinese


def _bank(mod: ModuleType, sep: str) -> TextBank:
    return TextBank(mod.OPENERS, mod.SIGN_OFF, mod.STAGE_LINES, mod.NEXT_STEPS, mod.OBJECTIONS, mod.LOSS_REASONS,
                    mod.SUBJECTS, mod.KIND_LABEL, mod.ACCOUNT_NOTES, sep)


BANKS = {"en": _bank(text_en, " "), "zh": _bank(text_zh, "")}
