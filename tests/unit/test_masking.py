import pytest

from config.masking import mask_email, mask_phone, mask_text
from config.settings import Settings


@pytest.mark.parametrize(("raw", "masked"), [
    ("13812345678", "138****5678"),
    ("+86 139 1234 5678", "+86 1** **** 5678"),
    ("+1 415-555-0134", "+1 41*-***-0134"),
])
def test_phone_keeps_first_three_and_last_four_digits(raw: str, masked: str) -> None:
    assert mask_phone(raw) == masked


def test_email_keeps_first_letter_and_domain() -> None:
    assert mask_email("li.wei@acme-energy.cn") == "l***@acme-energy.cn"


def test_free_text_masks_phones_and_emails_but_not_dates_or_amounts() -> None:
    text = "Call me on 138 1234 5678 or li.wei@acme.cn before 2026-03-14; budget 1,200,000 CNY, PO 4471."
    out = mask_text(text)
    assert "1234 5678" not in out and "li.wei@" not in out
    assert "138* **** 5678" in out or "138 **** 5678" in out
    assert "2026-03-14" in out and "1,200,000" in out and "4471" in out


def test_visibility_table_masks_personal_fields_for_support_only() -> None:
    s = Settings()
    assert s.visibility("contact", "phone", "support") == "masked"
    assert s.visibility("contact", "email", "rep") == "visible"
    assert s.visibility("account", "annual_revenue", "support") == "hidden"
    assert s.visibility("case", "internal_notes", "rep") == "hidden"


def test_phone_numbers_glued_to_chinese_text_are_masked() -> None:
    out = mask_text("客户手机是13987654321，邮箱wang@acme.cn。")
    assert "13987654321" not in out and "139****4321" in out and "wang@" not in out


def test_ids_are_not_phones_but_a_phone_beside_one_still_is() -> None:
    import uuid

    from config.masking import mask_text

    ids = [str(uuid.UUID(int=n * 7919 ** 9 % 2**128)) for n in range(1, 400)] + ["5f0e9c1a-1b2c-4d3e-8f00-570409171966"]
    for value in ids:
        assert mask_text(f"outcome of {value}") == f"outcome of {value}"
    assert mask_text("job 5f0e9c1a-1b2c-4d3e-8f00-570409171966, call 138-1234-5678") == (
        "job 5f0e9c1a-1b2c-4d3e-8f00-570409171966, call 138-****-5678")
