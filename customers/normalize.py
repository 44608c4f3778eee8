"""Normalising the fields identity resolution compares: phones, emails, person names, company names, cities.

Each function takes what a person typed and returns one canonical string (or None when nothing usable is left),
so that equal keys mean "the same value written differently": phones become E.164 (phonenumbers), Chinese names
and company names are compared through their pinyin (pypinyin), English given names through their canonical form
(``customers.nicknames``), and company names without their legal suffixes.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache

import phonenumbers
from pypinyin import Style, lazy_pinyin

from customers.nicknames import canonical_given_name

# Country names as the CRM stores them (English or Chinese) -> ISO region, for numbers written without "+".
REGION_BY_COUNTRY = {
    "china": "CN", "中国": "CN", "prc": "CN", "united states": "US", "usa": "US", "us": "US", "美国": "US",
    "canada": "CA", "united kingdom": "GB", "uk": "GB", "england": "GB", "germany": "DE", "deutschland": "DE",
    "netherlands": "NL", "italy": "IT", "france": "FR", "sweden": "SE", "spain": "ES", "singapore": "SG",
    "新加坡": "SG", "australia": "AU", "new zealand": "NZ", "malaysia": "MY", "united arab emirates": "AE",
    "uae": "AE", "japan": "JP", "日本": "JP", "india": "IN", "hong kong": "HK", "香港": "HK", "taiwan": "TW",
    "台湾": "TW", "korea": "KR", "south korea": "KR", "韩国": "KR",
}
REGION_BY_LANGUAGE = {"zh": "CN", "ja": "JP", "ko": "KR", "de": "DE", "fr": "FR"}

# Mailbox providers people use privately: a shared address there says little about being one person at work.
PERSONAL_MAIL_DOMAINS = frozenset({
    "gmail.com", "googlemail.com", "outlook.com", "hotmail.com", "live.com", "msn.com", "yahoo.com", "yahoo.co.uk",
    "icloud.com", "me.com", "mac.com", "aol.com", "proton.me", "protonmail.com", "gmx.de", "gmx.net", "web.de",
    "mail.ru", "yandex.ru", "qq.com", "vip.qq.com", "foxmail.com", "163.com", "126.com", "yeah.net", "vip.163.com",
    "sina.com", "sina.cn", "sohu.com", "aliyun.com", "139.com", "189.cn", "21cn.com", "tom.com",
})
_GMAIL = frozenset({"gmail.com", "googlemail.com"})

# Legal forms, longest first so "股份有限公司" goes before "有限公司". Latin ones are matched as whole words.
_ZH_LEGAL = ("股份有限公司", "有限责任公司", "集团有限公司", "有限公司", "分公司", "集团", "公司", "控股")
_LATIN_LEGAL = frozenset({
    "co", "company", "corp", "corporation", "inc", "incorporated", "ltd", "limited", "llc", "llp", "plc", "gmbh",
    "ag", "kg", "bv", "nv", "spa", "srl", "sas", "sa", "sl", "ab", "oy", "as", "pte", "pty", "sdn", "bhd",
    "group", "holdings", "holding", "kk",
})
_HONORIFICS = frozenset({"mr", "mrs", "ms", "miss", "dr", "prof", "sir", "madam", "jr", "sr", "ii", "iii"})
_ZH_HONORIFICS = ("先生", "女士", "小姐", "老师", "博士")
# Surnames whose reading differs from the character's everyday one (曾 is "ceng" in 曾经, "Zeng" as a name).
_SURNAME_READING = {"曾": "zeng", "单": "shan", "解": "xie", "仇": "qiu", "朴": "piao", "区": "ou", "查": "zha",
                    "翟": "zhai", "盖": "ge", "乐": "yue", "覃": "qin", "员": "yun", "缪": "miao", "秘": "bi",
                    "黑": "he", "万俟": "moqi", "尉迟": "yuchi"}
_COMPOUND_SURNAMES = frozenset({"欧阳", "司马", "诸葛", "上官", "东方", "慕容", "皇甫", "令狐", "夏侯", "尉迟",
                                "公孙", "长孙", "宇文", "司徒", "端木", "独孤", "南宫", "万俟", "轩辕", "钟离"})
_HAN = re.compile(r"[\u3400-\u9fff]")
_GERMAN = str.maketrans({"ä": "ae", "ö": "oe", "ü": "ue", "ß": "ss", "Ä": "Ae", "Ö": "Oe", "Ü": "Ue"})


def region_for(country: str | None = None, language: str | None = None) -> str | None:
    """The phone region to assume for a number written without "+": from the country, else the language."""
    if country:
        text = country.strip()
        if len(text) == 2 and text.isalpha() and text.upper() in phonenumbers.SUPPORTED_REGIONS:
            return text.upper()
        region = REGION_BY_COUNTRY.get(text.lower())
        if region:
            return region
    return REGION_BY_LANGUAGE.get((language or "").lower())


def normalize_phone(raw: str | None, region: str | None = None) -> str | None:
    """A phone number in E.164 ("+8613812345678"), or None when it can't be a number.

    ``region`` (ISO, e.g. "CN") is assumed for numbers without a country code, such as "138 1234 5678".
    A possible number is kept even when its range is unassigned: demo and test data use fictional 555 ranges.
    """
    if not raw or not raw.strip():
        return None
    text = unicodedata.normalize("NFKC", raw).strip()
    if text.startswith("00"):
        text = "+" + text[2:]
    try:
        number = phonenumbers.parse(text, None if text.startswith("+") else region)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_possible_number(number):
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def normalize_email(raw: str | None) -> str | None:
    """A mailbox in one form: lower case, "+tags" dropped, Gmail's dots dropped and googlemail.com as gmail.com."""
    if not raw:
        return None
    text = unicodedata.normalize("NFKC", raw).strip().strip("<>").lower()
    local, sep, domain = text.rpartition("@")
    if not sep or not local or "." not in domain or " " in text:
        return None
    local = local.split("+", 1)[0]
    if domain in _GMAIL:
        local, domain = local.replace(".", ""), "gmail.com"
    return f"{local}@{domain}" if local else None


def email_domain(email: str | None) -> str | None:
    """The domain of a normalised address."""
    return email.rpartition("@")[2] if email and "@" in email else None


def is_personal_domain(domain: str | None) -> bool:
    """Whether ``domain`` is a private mailbox provider (gmail.com, qq.com, 163.com...) rather than a company's."""
    return bool(domain) and domain in PERSONAL_MAIL_DOMAINS


def email_local_key(email: str | None) -> str | None:
    """The letters of an address's local part ("catherine.walker57" -> "catherinewalker"): the person, not the box.

    People keep their name when they move mailbox and drop dots or add digits, so this links a work address to
    a private one; being derived from the name, it is compared only as weak evidence.
    """
    if not email or "@" not in email:
        return None
    letters = "".join(c for c in email.rpartition("@")[0] if c.isalpha())
    return letters if len(letters) >= 3 else None


@dataclass(frozen=True)
class NameForms:
    """A person name in the forms identity resolution compares.

    Attributes:
        written: the name as written, tidied (case, accents, word order), in its own script.
        key: the canonical key: pinyin for Chinese, canonical given names, words sorted ("robert smith").
        initial_key: first initial and surname ("j smith"), so "J. Smith" meets "John Smith".
        script: "han" when written in Chinese characters, else "latin".
    """

    written: str
    key: str
    initial_key: str | None
    script: str


def _latin_tokens(text: str) -> list[str]:
    text = unicodedata.normalize("NFKD", text.translate(_GERMAN))
    text = "".join(c for c in text if not unicodedata.combining(c)).lower()
    text = re.sub(r"['’`]", "", text)
    return [t for t in re.split(r"[^a-z0-9]+", text) if t and t not in _HONORIFICS]


@lru_cache(maxsize=65_536)
def _han_pinyin(text: str) -> tuple[str, str]:
    """(surname, given name) in pinyin for a name written in Chinese characters."""
    surname = text[:2] if text[:2] in _COMPOUND_SURNAMES else text[:1]
    given = text[len(surname):]
    surname_py = _SURNAME_READING.get(surname) or "".join(lazy_pinyin(surname, style=Style.NORMAL))
    return surname_py, "".join(lazy_pinyin(given, style=Style.NORMAL))


def name_forms(raw: str | None) -> NameForms | None:
    """The comparable forms of a person's name; None when no letters are left.

    "王伟", "Wang Wei" and "Wei Wang" share the key "wang wei"; "Bob Smith" and "Smith, Robert" share
    "robert smith"; "J. Smith" has the initial key of "John Smith".
    """
    if not raw:
        return None
    text = unicodedata.normalize("NFKC", raw).strip()
    for honorific in _ZH_HONORIFICS:
        text = text.removesuffix(honorific)
    compact = re.sub(r"[\s·•.]", "", text)
    if compact and all(_HAN.match(c) for c in compact):
        surname, given = _han_pinyin(compact)
        tokens = [t for t in (surname, given) if t]
        initial = f"{given[0]} {surname}" if given else None
        return NameForms(compact, " ".join(sorted(tokens)), initial, "han")
    if _HAN.search(text):  # mixed scripts ("David 王"): read the characters as pinyin words
        text = " ".join("".join(lazy_pinyin(part)) if _HAN.match(part) else part
                        for part in re.findall(r"[\u3400-\u9fff]+|[^\u3400-\u9fff]+", text))
    if "," in text:  # "Smith, John" is surname first
        last, _, first = text.partition(",")
        text = f"{first} {last}"
    tokens = _latin_tokens(text)
    if not tokens:
        return None
    canonical = [canonical_given_name(tokens[0]), *tokens[1:]] if len(tokens) > 1 else tokens
    initial = f"{tokens[0][0]} {tokens[-1]}" if len(tokens) > 1 else None
    return NameForms(" ".join(sorted(tokens)), " ".join(sorted(canonical)), initial, "latin")


def company_key(raw: str | None) -> str | None:
    """A company name without legal forms or punctuation, Chinese in pinyin: "恒源有限公司" -> "hengyuan".

    Letters and digits only, so "Acme Software Inc." and "ACME-Software" share the key "acmesoftware".
    """
    if not raw:
        return None
    text = unicodedata.normalize("NFKC", raw).strip()
    text = re.sub(r"[（(][^)）]*[)）]$", lambda m: m.group(0) if re.search(r"\d", m.group(0)) else "", text)
    for suffix in _ZH_LEGAL:
        text = text.replace(suffix, " ")
    if _HAN.search(text):
        text = " ".join(lazy_pinyin(text, style=Style.NORMAL))
    words = [w for w in _latin_tokens(text.replace("&", " and ")) if w not in _LATIN_LEGAL]
    key = "".join(words)
    return key or None


def website_domain(raw: str | None) -> str | None:
    """A website's registrable host without scheme, "www." or path ("https://www.acme.com/x" -> "acme.com")."""
    if not raw or not raw.strip():
        return None
    host = re.sub(r"^[a-z]+://", "", raw.strip().lower()).split("/", 1)[0].split(":", 1)[0]
    host = host.removeprefix("www.")
    return host if "." in host else None


def city_key(raw: str | None) -> str | None:
    """A city name comparable across scripts ("上海" and "Shanghai" -> "shanghai")."""
    if not raw or not raw.strip():
        return None
    text = unicodedata.normalize("NFKC", raw).strip()
    if _HAN.search(text):
        text = "".join(lazy_pinyin(text.removesuffix("市")))
    key = "".join(_latin_tokens(text))
    return key or None
