"""The person model: which normalised fields a contact, lead or CSV row is compared on, and how.

Names agree at graded levels (as written, across scripts through pinyin, through a nickname or word order, an
initial, a close spelling); emails, phones, WeChat ids, companies and cities agree exactly on their normalised
keys. The guard asks for some name agreement on top of the probability: a shared home phone or family mailbox
alone never puts two people into one customer, however strong the model finds that contact point.
"""

from __future__ import annotations

from typing import Any

from customers.linkage import Comparison, Level, ModelSpec
from customers.normalize import (
    city_key,
    company_key,
    email_local_key,
    name_forms,
    normalize_email,
    normalize_phone,
    region_for,
)
from customers.similarity import jaro_winkler

Row = dict[str, Any]
COLUMNS = ("name_written", "name_key", "name_initial", "name_abbrev", "name_script", "email_norm", "email_local",
           "phone_e164", "wechat_id", "company_key", "city_key")
NAME_FUZZY = 0.92  # Jaro-Winkler on the name key; "jane smith"/"john smith" is 0.88, "mcleod"/"macleod" 0.96
COMPANY_FUZZY = 0.94


def _eq(col: str) -> Any:
    return lambda a, b: a.get(col) is not None and a.get(col) == b.get(col)


def _both_latin(a: Row, b: Row) -> bool:
    return a.get("name_script") == "latin" and b.get("name_script") == "latin"


def _abbrev(a: Row, b: Row) -> bool:
    return bool((a.get("name_abbrev") and a["name_abbrev"] == b.get("name_initial"))
                or (b.get("name_abbrev") and b["name_abbrev"] == a.get("name_initial")))


def _jw(col: str, threshold: float, latin_only: bool = False) -> Any:
    def test(a: Row, b: Row) -> bool:
        if a.get(col) is None or b.get(col) is None or (latin_only and not _both_latin(a, b)):
            return False
        return jaro_winkler(a[col], b[col]) >= threshold
    return test


NAME = Comparison("name", "name_key", (
    Level("name agrees (exact)", "name_written_l = name_written_r", test=_eq("name_written"), m=0.55, u=0.001),
    Level("name agrees (pinyin)", "name_key_l = name_key_r AND name_script_l <> name_script_r",
          test=lambda a, b: _eq("name_key")(a, b) and a.get("name_script") != b.get("name_script"), m=0.15, u=0.0003),
    Level("name agrees (nickname or word order)", "name_key_l = name_key_r", test=_eq("name_key"), m=0.15, u=0.0005),
    Level("name agrees (initial)", "name_abbrev_l = name_initial_r OR name_initial_l = name_abbrev_r",
          test=_abbrev, m=0.08, u=0.001),
    # Jaro-Winkler on pinyin would join siblings (li wei / li wen is 0.93), so only Latin spellings get it.
    Level("name similar (spelling)", f"name_script_l = 'latin' AND name_script_r = 'latin' AND "
          f"{{jw}}(name_key_l, name_key_r) >= {NAME_FUZZY}", test=_jw("name_key", NAME_FUZZY, True),
          m=0.04, u=0.002),
), else_label="name differs", else_m=0.03)
EMAIL = Comparison("email", "email_norm", (
    Level("email agrees (normalised)", "email_norm_l = email_norm_r", test=_eq("email_norm"), m=0.6, u=0.0001),
    Level("email local part agrees", "email_local_l = email_local_r", test=_eq("email_local"), m=0.25, u=0.0005),
), else_label="email differs", else_m=0.15)
PHONE = Comparison("phone", "phone_e164", (
    Level("phone agrees", "phone_e164_l = phone_e164_r", test=_eq("phone_e164"), m=0.9, u=0.0002),
), else_label="phone differs", else_m=0.1)
WECHAT = Comparison("wechat", "wechat_id", (
    Level("WeChat id agrees", "wechat_id_l = wechat_id_r", test=_eq("wechat_id"), m=0.95, u=0.00001),
), else_label="WeChat id differs", else_m=0.05)
COMPANY = Comparison("company", "company_key", (
    Level("company agrees (normalised)", "company_key_l = company_key_r", test=_eq("company_key"), m=0.85, u=0.01),
    Level("company similar", f"{{jw}}(company_key_l, company_key_r) >= {COMPANY_FUZZY}",
          test=_jw("company_key", COMPANY_FUZZY), m=0.05, u=0.005),
), else_label="company differs", else_m=0.1)
CITY = Comparison("city", "city_key", (
    Level("city agrees", "city_key_l = city_key_r", test=_eq("city_key"), m=0.9, u=0.05),
), else_label="city differs", else_m=0.1)

PERSON_SPEC = ModelSpec(
    comparisons=(NAME, EMAIL, PHONE, WECHAT, COMPANY, CITY),
    blocking=(("email_norm",), ("phone_e164",), ("wechat_id",), ("name_key", "company_key"),
              ("name_initial", "company_key"), ("email_local", "company_key")),
    em_blocks=(("email_norm",), ("phone_e164",), ("name_key", "company_key")),
    deterministic=("l.email_norm = r.email_norm AND l.name_key = r.name_key",
                   "l.phone_e164 = r.phone_e164 AND l.name_key = r.name_key",
                   "l.wechat_id = r.wechat_id"),
    recall=0.8,
    guard="gamma_name > 0",  # some level of name agreement (null = -1, differs = 0)
    threshold=0.9,
)
# On-create candidates are found through these IdentityKey kinds, then scored like a resolve run's pairs.
KEY_COLUMNS = {"email": "email_norm", "phone": "phone_e164", "name": "name_key", "wechat": "wechat_id",
               "company": "company_key"}
LOOKUP_KINDS = ("email", "phone", "name", "wechat")


def person_features(*, name: str | None = None, email: str | None = None, phone: str | None = None,
                    company: str | None = None, city: str | None = None, wechat_id: str | None = None,
                    country: str | None = None, language: str | None = None) -> Row:
    """The normalised fields of one person record (no raw value survives except the WeChat id's)."""
    forms = name_forms(name)
    region = region_for(country, language)
    if region is None and forms is not None and forms.script == "han":
        region = "CN"
    email_norm = normalize_email(email)
    abbrev = None
    if forms is not None and forms.initial_key and name and len(forms.initial_key.split()[0]) == 1:
        first = (name.split(",", 1)[1] if "," in name else name).strip().split()
        abbrev = forms.initial_key if first and len(first[0].rstrip(".")) == 1 else None
    return {
        "name_written": forms.written if forms else None,
        "name_key": forms.key if forms else None,
        "name_initial": forms.initial_key if forms else None,
        "name_abbrev": abbrev,
        "name_script": forms.script if forms else None,
        "email_norm": email_norm,
        "email_local": email_local_key(email_norm),
        "phone_e164": normalize_phone(phone, region),
        "wechat_id": (wechat_id or "").strip().lower() or None,
        "company_key": company_key(company),
        "city_key": city_key(city),
    }


def keys_of(features: Row) -> list[tuple[str, str]]:
    """The (kind, value) blocking keys of a record, as stored in ``IdentityKey``."""
    return [(kind, str(features[col])[:200]) for kind, col in KEY_COLUMNS.items() if features.get(col)]
