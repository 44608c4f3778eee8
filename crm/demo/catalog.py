"""The fictional vendor (Helios Grid Systems): teams, products, competitors, sales stages and titles."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

# Everything is dated relative to this fixed day so that the same seed gives the same data.
REFERENCE = datetime(2026, 11, 1, 9, 0, 0)
VENDOR = "Helios Grid Systems"
VENDOR_DOMAIN = "heliosgrid.example"


@dataclass(frozen=True)
class TeamSpec:
    """A sales team, its region, the share of Chinese accounts it holds and where English ones sit."""

    name: str
    region: str
    lang: str  # language of its reps' names
    en_region: str | None  # EN_CITIES key for its English accounts


TEAMS = (
    TeamSpec("East China", "CN-East", "zh", None),
    TeamSpec("South China & APAC", "APAC", "zh", "APAC"),
    TeamSpec("North America", "NA", "en", "North America"),
    TeamSpec("EMEA", "EMEA", "en", "EMEA"),
)


@dataclass(frozen=True)
class Product:
    """A product line: code (used in serials), names, and price per unit in USD."""

    code: str
    name: str
    name_zh: str
    line: str
    unit_usd: int


PRODUCTS = (
    Product("ESS-100", "HeliOS ESS-100 cabinet storage (100 kWh)", "HeliOS ESS-100 柜式储能系统（100 kWh）", "ess",
            38_000),
    Product("ESS-200", "HeliOS ESS-200 commercial storage (215 kWh)", "HeliOS ESS-200 工商业储能系统（215 kWh）", "ess",
            72_000),
    Product("ESS-500", "HeliOS ESS-500 containerised storage (1 MWh)", "HeliOS ESS-500 集装箱储能（1 MWh）", "ess",
            310_000),
    Product("BP-48", "BP-48 LFP battery pack (48 V)", "BP-48 磷酸铁锂电池包（48 V）", "pack", 1_900),
    Product("BP-96", "BP-96 high-voltage battery pack", "BP-96 高压电池包", "pack", 4_200),
    Product("TL-3", "TeleLink T3 IoT telematics gateway", "TeleLink T3 物联网车载网关", "iot", 420),
    Product("TL-5", "TeleLink T5 fleet telematics suite", "TeleLink T5 车队远程监控套件", "iot", 690),
    Product("GP", "GridPilot energy management SaaS", "GridPilot 能源管理云平台", "saas", 24_000),
)
PRODUCT_BY_CODE = {p.code: p for p in PRODUCTS}
# Which products each industry tends to buy (codes), so deals look plausible.
INDUSTRY_PRODUCTS = {
    "manufacturing": ("ESS-200", "ESS-500", "GP", "ESS-100"),
    "ev_batteries": ("BP-48", "BP-96", "TL-5", "ESS-500"),
    "saas": ("GP", "TL-3", "ESS-100"),
    "retail": ("ESS-100", "ESS-200", "GP"),
    "logistics": ("TL-3", "TL-5", "BP-48", "GP"),
    "healthcare": ("ESS-100", "ESS-200", "GP"),
    "fintech": ("GP", "ESS-100", "TL-3"),
    "utilities": ("ESS-500", "ESS-200", "GP"),
    "telecom": ("BP-48", "ESS-100", "TL-3"),
}
COMPETITORS_EN = ("Tesla Energy", "Fluence", "Sungrow", "BYD Energy", "LG Energy Solution", "Wärtsilä",
                  "Samsara", "Geotab", "Schneider Electric", "Siemens Energy")
COMPETITORS_ZH = ("宁德时代", "比亚迪储能", "阳光电源", "海辰储能", "华为数字能源", "远景能源", "G7物联", "科华数据")

STAGES = ("prospecting", "qualification", "needs_analysis", "proposal", "negotiation", "closed_won", "closed_lost")
PROBABILITY = {"prospecting": 10, "qualification": 20, "needs_analysis": 35, "proposal": 55, "negotiation": 75,
               "closed_won": 100, "closed_lost": 0}
# Final stage mix of the pipeline.
STAGE_WEIGHTS = (("prospecting", 10), ("qualification", 12), ("needs_analysis", 12), ("proposal", 12),
                 ("negotiation", 10), ("closed_won", 24), ("closed_lost", 20))

# Customer-side titles: key -> (English, Chinese). Keys let stories pick "the CFO" or "procurement".
TITLES = {
    "ceo": ("CEO", "总经理"), "cfo": ("CFO", "财务总监"), "cto": ("CTO", "技术总监"),
    "procurement": ("Procurement Manager", "采购经理"), "ops": ("VP Operations", "运营副总裁"),
    "plant": ("Plant Manager", "工厂厂长"), "energy": ("Energy Manager", "能源经理"),
    "it_sec": ("IT Security Lead", "信息安全主管"), "pm": ("Project Manager", "项目经理"),
    "engineer": ("Electrical Engineer", "电气工程师"), "fleet": ("Fleet Manager", "车队经理"),
    "facilities": ("Facilities Director", "设施总监"),
}
TITLE_WEIGHTS = (("procurement", 12), ("cfo", 8), ("cto", 8), ("ceo", 5), ("ops", 8), ("plant", 8),
                 ("energy", 9), ("it_sec", 6), ("pm", 10), ("engineer", 12), ("fleet", 6), ("facilities", 8))

CASE_PRIORITY_SLA_H = {"urgent": 4, "high": 24, "medium": 72, "low": 120}
CASE_STATUS_WEIGHTS = (("new", 8), ("open", 16), ("pending", 10), ("escalated", 6), ("closed", 60))
CASE_PRIORITY_WEIGHTS = (("low", 25), ("medium", 45), ("high", 22), ("urgent", 8))
LEAD_SOURCES = (("web", 35), ("event", 20), ("referral", 15), ("partner", 15), ("cold_call", 15))
LEAD_STATUS = (("new", 35), ("working", 30), ("qualified", 15), ("converted", 8), ("disqualified", 12))


def money(amount: float, currency: str) -> str:
    """A budget the way reps write it: '1.2M CNY', '850K USD'."""
    if amount >= 1_000_000:
        text = f"{amount / 1_000_000:.2f}".rstrip("0").rstrip(".")
        return f"{text}M {currency}"
    return f"{round(amount / 1000)}K {currency}"


def money_zh(amount: float, currency: str) -> str:
    """A budget the way Chinese notes write it: '120万元', '85万美元'."""
    unit = {"CNY": "元", "USD": "美元", "EUR": "欧元", "GBP": "英镑"}.get(currency, currency)
    wan = amount / 10_000
    text = f"{wan:.1f}".rstrip("0").rstrip(".") if wan < 100 else f"{round(wan)}"
    return f"{text}万{unit}"
