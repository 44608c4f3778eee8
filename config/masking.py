"""Masking personal data: in field values and inside free text."""

from __future__ import annotations

import re

# Phone numbers: optional +country, then 7+ digits with spaces, dashes, dots or brackets between them.
# Bounded by ASCII word characters only: Chinese text runs straight into digits ("手机是13987654321").
_PHONE_RE = re.compile(
    r"(?<![A-Za-z0-9_])(?:\+\d{1,3}[\s\-.]?)?(?:\(?\d{2,4}\)?[\s\-.]?){2,4}\d{3,4}(?![A-Za-z0-9_])")
_EMAIL_RE = re.compile(r"[A-Za-z0-9._%+\-]+@[A-Za-z0-9.\-]+\.[A-Za-z]{2,}")
# Ids are not phones: about 9% of dashed UUIDs end in a digit run the phone pattern takes (…-570409171966).
_UUID_RE = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")


def mask_phone(value: str) -> str:
    """``13812345678`` -> ``138****5678``; keeps the first three and last four digits."""
    digits = [i for i, ch in enumerate(value) if ch.isdigit()]
    if len(digits) < 8:
        return "*" * len(value)
    keep = set(digits[:3]) | set(digits[-4:])
    return "".join(ch if (i in keep or not ch.isdigit()) else "*" for i, ch in enumerate(value))


def mask_email(value: str) -> str:
    """``li.wei@example.com`` -> ``l***@example.com``."""
    local, at, domain = value.partition("@")
    if not at:
        return "***"
    return (local[:1] or "*") + "***@" + domain


def mask_value(field: str, value: object) -> object:
    """Mask a personal field's value by its kind; None stays None."""
    if value is None:
        return None
    text = str(value)
    if "email" in field or "@" in text:
        return mask_email(text)
    if "phone" in field or "mobile" in field:
        return mask_phone(text)
    return text[:1] + "***" if text else text


def mask_text(text: str) -> str:
    """Mask every phone number and email address found inside free text."""
    text = _EMAIL_RE.sub(lambda m: mask_email(m.group(0)), text)
    ids = [m.span() for m in _UUID_RE.finditer(text)]

    def phone(m: re.Match[str]) -> str:
        inside_id = any(start <= m.start() < end for start, end in ids)
        return mask_phone(m.group(0)) if _looks_like_phone(m.group(0)) and not inside_id else m.group(0)

    return _PHONE_RE.sub(phone, text)


def _looks_like_phone(s: str) -> bool:
    digits = sum(ch.isdigit() for ch in s)
    # Dates (2025-03-14), amounts and codes have fewer digits or no separators typical of phones.
    return digits >= 8 and not re.fullmatch(r"\d{4}-\d{2}-\d{2}", s.strip())
