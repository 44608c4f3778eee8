"""Name banks for demo people and companies (English and Chinese), with phone and email formats."""

from __future__ import annotations

import random
from dataclasses import dataclass

EN_FIRST = (
    "James", "Mary", "John", "Patricia", "Robert", "Jennifer", "Michael", "Linda", "David", "Elizabeth",
    "William", "Barbara", "Richard", "Susan", "Joseph", "Jessica", "Thomas", "Sarah", "Charles", "Karen",
    "Daniel", "Nancy", "Matthew", "Lisa", "Anthony", "Margaret", "Mark", "Sandra", "Steven", "Ashley",
    "Andrew", "Emily", "Kevin", "Michelle", "Brian", "Amanda", "George", "Melissa", "Edward", "Rebecca",
    "Oliver", "Sophie", "Lukas", "Hannah", "Matteo", "Giulia", "Pierre", "Camille", "Sven", "Ingrid",
    "Rahul", "Priya", "Carlos", "Lucia", "Ahmed", "Fatima", "Kenji", "Aiko", "Liam", "Chloe",
    "Stephen", "Catherine", "Jonathan", "Katherine", "Geoffrey", "Rachel", "Philip", "Teresa", "Marcus", "Elena",
)
EN_LAST = (
    "Smith", "Johnson", "Williams", "Brown", "Jones", "Miller", "Davis", "Wilson", "Anderson", "Taylor",
    "Thomas", "Moore", "Martin", "Jackson", "Thompson", "White", "Harris", "Clark", "Lewis", "Walker",
    "Young", "Allen", "King", "Wright", "Scott", "Green", "Baker", "Adams", "Nelson", "Hill",
    "Campbell", "Mitchell", "Roberts", "Carter", "Phillips", "Evans", "Turner", "Parker", "Collins", "Edwards",
    "Müller", "Schmidt", "Fischer", "Weber", "Rossi", "Bianchi", "Dubois", "Laurent", "Larsen", "Johansson",
    "Sharma", "Patel", "García", "Fernández", "Haddad", "Tanaka", "Sato", "O'Brien", "MacLeod", "Novak",
)
# Spelling variants people really mix up; used to plant duplicate contacts.
EN_VARIANTS = {
    "John": "Jon", "Stephen": "Steven", "Steven": "Stephen", "Catherine": "Katherine", "Katherine": "Catherine",
    "Geoffrey": "Jeffrey", "Philip": "Phillip", "Teresa": "Theresa", "Sarah": "Sara", "Rebecca": "Rebekah",
    "Jonathan": "Jonathon", "Marcus": "Markus", "Elena": "Helena", "Michael": "Mike", "William": "Bill",
    "Robert": "Bob", "Richard": "Rick", "Thomas": "Tom", "Daniel": "Dan", "Matthew": "Matt",
    "Müller": "Mueller", "García": "Garcia", "Fernández": "Fernandez", "O'Brien": "OBrien", "MacLeod": "McLeod",
}
# Chinese surnames and given names with their pinyin (for emails and "Zhang Wei" style spellings).
ZH_SURNAMES = (
    ("王", "Wang"), ("李", "Li"), ("张", "Zhang"), ("刘", "Liu"), ("陈", "Chen"), ("杨", "Yang"), ("黄", "Huang"),
    ("赵", "Zhao"), ("吴", "Wu"), ("周", "Zhou"), ("徐", "Xu"), ("孙", "Sun"), ("马", "Ma"), ("朱", "Zhu"),
    ("胡", "Hu"), ("郭", "Guo"), ("何", "He"), ("林", "Lin"), ("罗", "Luo"), ("高", "Gao"), ("郑", "Zheng"),
    ("梁", "Liang"), ("谢", "Xie"), ("宋", "Song"), ("唐", "Tang"), ("许", "Xu"), ("韩", "Han"), ("冯", "Feng"),
    ("邓", "Deng"), ("曹", "Cao"), ("彭", "Peng"), ("曾", "Zeng"), ("田", "Tian"), ("董", "Dong"), ("潘", "Pan"),
)
ZH_GIVEN = (
    ("伟", "Wei"), ("芳", "Fang"), ("娜", "Na"), ("敏", "Min"), ("静", "Jing"), ("磊", "Lei"), ("强", "Qiang"),
    ("洋", "Yang"), ("艳", "Yan"), ("勇", "Yong"), ("军", "Jun"), ("杰", "Jie"), ("涛", "Tao"), ("明", "Ming"),
    ("超", "Chao"), ("秀英", "Xiuying"), ("丽娜", "Lina"), ("建华", "Jianhua"), ("志强", "Zhiqiang"),
    ("海燕", "Haiyan"), ("晓东", "Xiaodong"), ("俊杰", "Junjie"), ("雪梅", "Xuemei"), ("文博", "Wenbo"),
    ("思远", "Siyuan"), ("佳怡", "Jiayi"), ("子涵", "Zihan"), ("浩然", "Haoran"), ("雨欣", "Yuxin"),
    ("国庆", "Guoqing"), ("振华", "Zhenhua"), ("鹏飞", "Pengfei"), ("晓雯", "Xiaowen"), ("立新", "Lixin"),
)

ZH_CITIES = (
    ("上海", "Shanghai", "021"), ("苏州", "Suzhou", "0512"), ("杭州", "Hangzhou", "0571"),
    ("南京", "Nanjing", "025"), ("宁波", "Ningbo", "0574"), ("无锡", "Wuxi", "0510"), ("合肥", "Hefei", "0551"),
    ("常州", "Changzhou", "0519"), ("深圳", "Shenzhen", "0755"), ("广州", "Guangzhou", "020"),
    ("东莞", "Dongguan", "0769"), ("佛山", "Foshan", "0757"), ("厦门", "Xiamen", "0592"), ("福州", "Fuzhou", "0591"),
    ("长沙", "Changsha", "0731"), ("惠州", "Huizhou", "0752"),
)
EN_CITIES = {
    "North America": (("Austin", "United States", "+1 512"), ("San Jose", "United States", "+1 408"),
                      ("Chicago", "United States", "+1 312"), ("Detroit", "United States", "+1 313"),
                      ("Denver", "United States", "+1 303"), ("Atlanta", "United States", "+1 404"),
                      ("Boston", "United States", "+1 617"), ("Phoenix", "United States", "+1 602"),
                      ("Toronto", "Canada", "+1 416"), ("Vancouver", "Canada", "+1 604"),
                      ("San Francisco", "United States", "+1 415"), ("Houston", "United States", "+1 713")),
    "EMEA": (("London", "United Kingdom", "+44 20"), ("Manchester", "United Kingdom", "+44 161"),
             ("Munich", "Germany", "+49 89"), ("Hamburg", "Germany", "+49 40"), ("Stuttgart", "Germany", "+49 711"),
             ("Rotterdam", "Netherlands", "+31 10"), ("Milan", "Italy", "+39 02"), ("Lyon", "France", "+33 4"),
             ("Stockholm", "Sweden", "+46 8"), ("Madrid", "Spain", "+34 91"), ("Dubai", "United Arab Emirates",
                                                                                 "+971 4")),
    "APAC": (("Singapore", "Singapore", "+65"), ("Sydney", "Australia", "+61 2"), ("Melbourne", "Australia", "+61 3"),
             ("Auckland", "New Zealand", "+64 9"), ("Kuala Lumpur", "Malaysia", "+60 3")),
}

EN_COMPANY_HEAD = (
    "Acme", "Northwind", "Bluewater", "Redwood", "Summit", "Ironbridge", "Cedar", "Granite", "Silverline",
    "Harbor", "Keystone", "Pinnacle", "Sterling", "Meridian", "Atlas", "Beacon", "Crescent", "Evergreen",
    "Falcon", "Horizon", "Lakeshore", "Oakmont", "Prairie", "Riverbend", "Sunridge", "Tidewater", "Vanguard",
    "Westfield", "Brightwave", "Clearpath", "Fieldstone", "Highgate", "Kingsway", "Larkspur", "Moorland",
    "Northgate", "Orchard", "Quarry", "Rockford", "Stonebridge", "Thornbury", "Upland", "Windmere", "Alder",
)
EN_COMPANY_TAIL = {
    "manufacturing": ("Manufacturing", "Industries", "Precision Works", "Fabrication", "Machinery"),
    "ev_batteries": ("Energy", "Power Systems", "Mobility", "Battery Works", "EV Systems"),
    "saas": ("Software", "Cloud", "Analytics", "Labs", "Digital"),
    "retail": ("Retail Group", "Stores", "Markets", "Outfitters", "Supply Co."),
    "logistics": ("Logistics", "Freight", "Distribution", "Cold Chain", "Transport"),
    "healthcare": ("Health", "Medical Center", "Clinics", "Biosciences", "Care Partners"),
    "fintech": ("Payments", "Capital", "Financial", "Pay", "Ledger"),
    "utilities": ("Utilities", "Grid Services", "Renewables", "Solar", "Power & Light"),
    "telecom": ("Telecom", "Networks", "Towers", "Connect", "Fiber"),
}
EN_SUFFIX = {"United States": " Inc.", "Canada": " Ltd.", "United Kingdom": " Ltd", "Germany": " GmbH",
             "Netherlands": " B.V.", "Italy": " S.p.A.", "France": " SAS", "Sweden": " AB", "Spain": " S.L.",
             "Singapore": " Pte. Ltd.", "Australia": " Pty Ltd", "New Zealand": " Ltd", "Malaysia": " Sdn. Bhd.",
             "United Arab Emirates": " LLC"}
TLD = {"United States": "com", "Canada": "ca", "United Kingdom": "co.uk", "Germany": "de", "Netherlands": "nl",
       "Italy": "it", "France": "fr", "Sweden": "se", "Spain": "es", "Singapore": "com.sg", "Australia": "com.au",
       "New Zealand": "co.nz", "Malaysia": "com.my", "United Arab Emirates": "ae"}

ZH_COMPANY_HEAD = (
    ("恒源", "hengyuan"), ("华能达", "huanengda"), ("中科鑫", "zhongkexin"), ("瑞丰", "ruifeng"), ("天润", "tianrun"),
    ("远景宏", "yuanjinghong"), ("金旗", "jinqi"), ("博越", "boyue"), ("鼎盛", "dingsheng"), ("新航", "xinhang"),
    ("致远", "zhiyuan"), ("盛世华", "shengshihua"), ("永泰", "yongtai"), ("宏图", "hongtu"), ("嘉禾", "jiahe"),
    ("东方锐", "dongfangrui"), ("海川", "haichuan"), ("星辰", "xingchen"), ("凯达", "kaida"), ("明阳智", "mingyangzhi"),
    ("安途", "antu"), ("润联", "runlian"), ("精工", "jinggong"), ("联创", "lianchuang"), ("汇通", "huitong"),
    ("百川", "baichuan"), ("赛普", "saipu"), ("合力", "heli"), ("华晟", "huasheng"), ("卓越", "zhuoyue"),
)
ZH_COMPANY_TAIL = {
    "manufacturing": ("智能制造", "精密机械", "装备制造", "工业"),
    "ev_batteries": ("新能源", "动力电池", "储能科技", "电动汽车"),
    "saas": ("软件", "云计算", "数据科技", "信息技术"),
    "retail": ("商贸", "零售", "连锁超市", "电子商务"),
    "logistics": ("物流", "供应链", "冷链物流", "运输"),
    "healthcare": ("医疗器械", "生物医药", "健康科技", "医院管理"),
    "fintech": ("金融科技", "支付", "数字科技", "融资租赁"),
    "utilities": ("电力", "光伏", "能源服务", "新能源发电"),
    "telecom": ("通信", "网络技术", "通信设备", "物联网"),
}
INDUSTRY_LABEL = {"manufacturing": "Manufacturing", "ev_batteries": "EV & Batteries", "saas": "SaaS",
                  "retail": "Retail", "logistics": "Logistics", "healthcare": "Healthcare", "fintech": "Fintech",
                  "utilities": "Utilities", "telecom": "Telecom"}
INDUSTRY_ZH = {"manufacturing": "制造业", "ev_batteries": "新能源汽车与电池", "saas": "软件服务", "retail": "零售",
               "logistics": "物流", "healthcare": "医疗健康", "fintech": "金融科技", "utilities": "电力能源",
               "telecom": "通信"}
PERSONAL_MAIL_EN = ("gmail.com", "outlook.com", "yahoo.com", "icloud.com")
PERSONAL_MAIL_ZH = ("qq.com", "163.com", "126.com", "foxmail.com")


@dataclass(frozen=True)
class Person:
    """A generated person: display name, email local part, and alternative spellings for duplicates."""

    name: str
    local: str
    alt_names: tuple[str, ...]


def en_person(rng: random.Random) -> Person:
    """An English-style name like 'Catherine Walker'."""
    first, last = rng.choice(EN_FIRST), rng.choice(EN_LAST)
    local = f"{_ascii(first)}.{_ascii(last)}".lower()
    alts = [f"{EN_VARIANTS.get(first, first)} {EN_VARIANTS.get(last, last)}", f"{first[0]}. {last}",
            f"{last}, {first}"]
    return Person(f"{first} {last}", local, tuple(a for a in alts if a != f"{first} {last}"))


def zh_person(rng: random.Random) -> Person:
    """A Chinese name like '张伟', with pinyin spellings ('Zhang Wei', 'Wei Zhang') as alternatives."""
    (s, sp), (g, gp) = rng.choice(ZH_SURNAMES), rng.choice(ZH_GIVEN)
    return Person(f"{s}{g}", f"{gp}.{sp}".lower(), (f"{sp} {gp}", f"{gp} {sp}", f"{s} {g}"))


def _ascii(text: str) -> str:
    table = str.maketrans({"ü": "ue", "é": "e", "í": "i", "á": "a", "'": ""})
    return text.translate(table)


def cn_mobile(rng: random.Random) -> str:
    """A mainland mobile number in one of the ways people write them."""
    prefix = rng.choice(("138", "139", "137", "136", "135", "150", "151", "152", "158", "159", "186", "187",
                         "188", "177", "181", "189"))
    body = f"{rng.randrange(10_000_000):08d}"
    style = rng.random()
    if style < 0.5:
        return f"{prefix}{body}"
    if style < 0.8:
        return f"+86 {prefix} {body[:4]} {body[4:]}"
    return f"{prefix}-{body[:4]}-{body[4:]}"


def intl_phone(rng: random.Random, dial: str) -> str:
    """A landline or mobile in the country's usual layout (fictional 555 numbers in North America)."""
    if dial.startswith("+1 "):
        return f"{dial}-555-{rng.randrange(100, 200):04d}"
    if dial.startswith("+44"):
        return f"{dial} {rng.randrange(7000, 7999)} {rng.randrange(1000, 9999)}"
    return f"{dial} {rng.randrange(100, 999)} {rng.randrange(1000, 9999)}"


def spoken_phone(phone: str) -> str:
    """A phone number the way someone types it in a message ('138 1234 5678')."""
    digits = "".join(c for c in phone if c.isdigit())
    if len(digits) == 11 and digits.startswith("1"):
        return f"{digits[:3]} {digits[3:7]} {digits[7:]}"
    return phone
