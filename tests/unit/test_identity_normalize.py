"""Normalisation for identity resolution: phones, emails, names (pinyin, nicknames, initials), companies."""

from __future__ import annotations

import pytest

from crm.demo.names import PERSONAL_MAIL_EN, PERSONAL_MAIL_ZH, spoken_phone
from customers.normalize import (
    city_key,
    company_key,
    email_local_key,
    is_personal_domain,
    name_forms,
    normalize_email,
    normalize_phone,
    region_for,
    website_domain,
)


@pytest.mark.parametrize("raw", ["13812345678", "+86 138 1234 5678", "138-1234-5678", "0086 138 1234 5678",
                                 spoken_phone("13812345678"), "＋８６ １３８１２３４５６７８"])
def test_chinese_mobiles_in_every_layout_become_one_e164(raw: str) -> None:
    assert normalize_phone(raw, "CN") == "+8613812345678"


def test_international_numbers_keep_their_country_and_region_comes_from_country_or_language() -> None:
    assert normalize_phone("+1 415-555-0134") == "+14155550134"
    assert normalize_phone("(415) 555-0134", region_for("United States")) == "+14155550134"
    assert normalize_phone("+44 20 7123 4567") == "+442071234567"
    assert region_for("中国") == "CN" and region_for(None, "zh") == "CN" and region_for("DE") == "DE"
    assert region_for("Atlantis", "en") is None


@pytest.mark.parametrize("raw", [None, "", "   ", "call me", "12", "+86 1"])
def test_what_cannot_be_a_phone_number_is_none(raw: str | None) -> None:
    assert normalize_phone(raw, "CN") is None


def test_emails_lose_case_tags_and_gmail_dots() -> None:
    assert normalize_email(" Li.Wei@ACME-Energy.cn ") == "li.wei@acme-energy.cn"
    assert normalize_email("Jane.Doe+crm@googlemail.com") == "janedoe@gmail.com"
    assert normalize_email("jane.doe+x@outlook.com") == "jane.doe@outlook.com"
    assert normalize_email("no-at-sign") is None and normalize_email("a@b") is None and normalize_email(None) is None


def test_personal_mail_domains_include_the_demo_lists_and_chinese_providers() -> None:
    for domain in (*PERSONAL_MAIL_EN, *PERSONAL_MAIL_ZH, "sina.com"):
        assert is_personal_domain(domain), domain
    assert not is_personal_domain("acme-energy.cn") and not is_personal_domain(None)


def test_email_local_key_is_the_letters_of_the_person() -> None:
    assert email_local_key("catherine.walker@acme.com") == email_local_key("catherinewalker57@gmail.com")
    assert email_local_key("x1@acme.com") is None


@pytest.mark.parametrize("a, b", [("王伟", "Wang Wei"), ("王伟", "Wei Wang"),
                                  ("Wang Wei", "WEI  wang"), ("曾志强", "Zeng Zhiqiang"),
                                  ("欧阳秀英", "Xiuying Ouyang"), ("张伟先生", "Zhang Wei")])
def test_chinese_names_meet_their_pinyin_in_either_order(a: str, b: str) -> None:
    fa, fb = name_forms(a), name_forms(b)
    assert fa is not None and fb is not None and fa.key == fb.key


def test_a_chinese_name_remembers_its_script() -> None:
    forms = name_forms("王伟")
    assert forms is not None and forms.script == "han" and forms.written == "王伟"
    assert name_forms("Wang Wei").script == "latin"  # type: ignore[union-attr]


@pytest.mark.parametrize("a, b", [("Bob Smith", "Robert Smith"), ("Bill Gates", "William Gates"),
                                  ("Liz Taylor", "Elizabeth Taylor"), ("Smith, Robert", "Robert Smith"),
                                  ("Mr. Jon Smith", "John Smith"), ("Katherine Walker", "Catherine Walker"),
                                  ("Thomas Müller", "Thomas Mueller"), ("José García", "Jose Garcia"),
                                  ("Liam O'Brien", "liam obrien")])
def test_english_nicknames_variants_order_and_accents_share_a_key(a: str, b: str) -> None:
    assert name_forms(a).key == name_forms(b).key  # type: ignore[union-attr]


def test_initials_meet_the_full_given_name_but_different_people_do_not() -> None:
    assert name_forms("J. Smith").initial_key == name_forms("John Smith").initial_key == "j smith"  # type: ignore
    assert name_forms("John Smith").key != name_forms("Jane Smith").key  # type: ignore[union-attr]
    assert name_forms("Liam Smith").key != name_forms("William Smith").key  # type: ignore[union-attr]
    assert name_forms("  ") is None and name_forms("Dr.") is None


@pytest.mark.parametrize("a, b", [("上海恒源智能制造有限公司", "上海恒源智能制造"),
                                  ("恒源集团股份有限公司", "Hengyuan"), ("Acme Software Inc.", "ACME-Software"),
                                  ("Northwind Energy GmbH", "Northwind Energy"), ("Harbor Pte. Ltd.", "harbor"),
                                  ("Cedar Supply Co., Ltd.", "Cedar Supply")])
def test_company_names_lose_legal_forms_and_meet_across_scripts(a: str, b: str) -> None:
    assert company_key(a) == company_key(b)


def test_numbered_companies_stay_distinct_and_empty_names_are_none() -> None:
    assert company_key("Acme Software Inc. (17)") != company_key("Acme Software Inc.")
    assert company_key("有限公司") is None and company_key(None) is None


def test_website_domain_and_city_key() -> None:
    assert website_domain("https://www.acme.com/about") == website_domain("ACME.com") == "acme.com"
    assert website_domain("") is None and website_domain("localhost") is None
    assert city_key("上海") == city_key("Shanghai") == city_key("上海市") == "shanghai"
