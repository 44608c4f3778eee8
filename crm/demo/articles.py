"""Knowledge articles: troubleshooting, warranty, installation, maintenance, pricing policy and security FAQs."""

from __future__ import annotations

import random
from datetime import timedelta

from crm.demo import cases_text as ct
from crm.demo.catalog import PRODUCTS, REFERENCE
from crm.demo.world import Row

_WARRANTY = {
    "en": ("Warranty policy: {name}",
           "This policy covers the {name} sold by Helios Grid Systems and its authorised partners. Hardware"
           " is "
           "covered for {years} years from commissioning against defects in materials and workmanship.\n\n"
           "Capacity: we guarantee at least 70% of nameplate energy at the end of the warranty period, prov"
           "ided the "
           "system is operated within the published temperature range and cycle limits ({cycles} full cycle"
           "s).\n\n"
           "Not covered: damage from flooding, unauthorised modification, operation without the remote moni"
           "toring "
           "connection for more than 30 consecutive days, and consumables such as air filters.\n\n"
           "To claim, open a case with the serial number, the monitoring export for the last 90 days and ph"
           "otos of "
           "the unit label. Replacement parts ship within 5 working days in mainland China, the EU and North "
           "America."),
    "zh": ("质保政策：{name}",
           "本政策适用于赫利俄斯电网系统及授权合作伙伴销售的{name}。硬件自调试验收之日起质保{years}年，"
           "覆盖材料和工艺缺陷。\n\n容量保证：在规定的温度范围和循环次数（{cycles}次满充满放）内使用，质保期末"
           "可用能量不低于铭牌容量的70%。\n\n不在质保范围：水浸、未经授权的改装、连续30天以上未连接远程监控，"
           "以及空气滤网等耗材。\n\n申请质保请提交工单，并附序列号、最近90天的监控数据导出和铭牌照片。"
           "中国大陆、欧盟和北美地区的备件在5个工作日内发出。"),
}
_INSTALL = {
    "en": ("Installation guide: {name}",
           "Before installation, confirm the foundation is level to within 5 mm and that the site has the c"
           "learances "
           "in the drawing pack (at least 1 m at the front for service access).\n\n1. Check the delivery ag"
           "ainst the "
           "packing list and record the serial numbers.\n2. Position the unit with a forklift rated for the "
           "shipping weight; never lift by the door frame.\n3. Connect protective earth first, then DC and "
           "AC "
           "cables, torquing terminals to the values on the label.\n4. Connect the {name} to the network and "
           "confirm it appears in GridPilot.\n5. Run the commissioning wizard and keep the report for the "
           "warranty file.\n\nOnly certified installers may commission the system."),
    "zh": ("安装指南：{name}",
           "安装前请确认基础水平误差不超过5毫米，并满足图纸要求的安全间距（正面检修空间至少1米）。\n\n"
           "1. 对照装箱单清点货物并记录序列号。\n2. 使用额定载荷满足运输重量的叉车就位，严禁通过柜门框起吊"
           "。\n"
           "3. 先连接保护接地，再连接直流和交流电缆，按铭牌要求的力矩紧固端子。\n4. 将{name}接入网络，"
           "确认在GridPilot平台中上线。\n5. 运行调试向导并保存调试报告，作为质保凭证。\n\n只有经过认证的安"
           "装商"
           "才能进行调试。"),
}
_MAINT = {
    "en": ("Maintenance schedule: {name}",
           "Monthly: check the monitoring dashboard for alarms and compare state-of-health trends between r"
           "acks.\n\n"
           "Every 6 months: clean or replace air filters, inspect cable glands and tighten terminals to the"
           " listed "
           "torque.\n\nYearly: thermal scan of busbars under load, firmware update to the latest long-term "
           "release, "
           "and a capacity test if the warranty file requires it. Record every visit in the service log; mi"
           "ssing "
           "records can delay warranty claims."),
    "zh": ("维护计划：{name}",
           "每月：查看监控平台告警，比较各电池簇的健康度趋势。\n\n每半年：清洁或更换空气滤网，检查电缆格兰头并按"
           "规定力矩紧固端子。\n\n每年：带载对母排做红外热成像检测，将固件升级到最新长期支持版本，如质保要求则做"
           "一次容量测试。每次维护都需记录在运维日志中，记录缺失可能影响质保理赔。"),
}
_PRICING = {
    "en": ("Pricing and discount policy ({region})",
           "List prices are reviewed every quarter. Account managers may approve discounts up to 8% on hard"
           "ware; "
           "8-15% needs the regional sales director, and anything above 15% needs the CFO.\n\nMulti-year se"
           "rvice "
           "contracts can unlock an extra 3-5% on hardware. Quotes are valid for 60 days; after that, price"
           "s are "
           "re-confirmed against the current cell cost index.\n\nNever promise free installation or extended "
           "warranty in writing without deal desk approval."),
    "zh": ("价格与折扣政策（{region}）",
           "目录价每季度调整一次。客户经理可审批硬件8%以内的折扣；8%-15%需区域销售总监审批；超过15%需财务总监审批。"
           "\n\n签订多年期运维合同可额外给予硬件3%-5%的优惠。报价有效期60天，逾期需按当期电芯成本指数重新确认价格。"
           "\n\n未经商务审批，不得书面承诺免费安装或延长质保。"),
}
_SECURITY = {
    "en": (("Security FAQ: where is monitoring data stored?",
            "Monitoring data is stored in the region the customer chooses: Frankfurt for the EU, Virginia f"
            "or North "
            "America and Shanghai for mainland China. Data does not leave that region. Backups are encrypte"
            "d with "
            "AES-256 and kept for 35 days."),
           ("Security FAQ: certifications",
            "GridPilot is certified to ISO 27001 and has a SOC 2 Type II report, available under NDA from y"
            "our "
            "account manager. We run an external penetration test every year."),
           ("Security FAQ: single sign-on and access control",
            "GridPilot supports SAML 2.0 and OpenID Connect. Customer admins assign roles per site; every a"
            "ccess is "
            "logged and logs can be exported to the customer's SIEM."),
           ("Security FAQ: on-premise option",
            "For sites that cannot connect to the cloud, the GridPilot Edge server runs on a local virtual "
            "machine "
            "and keeps 13 months of data. Remote support then requires a VPN set up by the customer.")),
    "zh": (("安全常见问题：监控数据存储在哪里？",
            "监控数据存储在客户选择的区域：欧盟为法兰克福，北美为弗吉尼亚，中国大陆为上海，数据不会出境。备份使用"
            "AES-256加密，保留35天。"),
           ("安全常见问题：资质认证",
            "GridPilot已通过ISO 27001认证和等保三级测评，SOC 2 Type II报告可在签署保密协议后向客户经理索取。"
            "我们每年进行一次第三方渗透测试。"),
           ("安全常见问题：单点登录与权限",
            "GridPilot支持SAML 2.0、OpenID Connect以及企业微信登录。客户管理员可按站点分配角色，所有访问均"
            "有日志，"
            "可导出到客户的安全运营平台。"),
           ("安全常见问题：私有化部署",
            "无法连接云端的站点可使用GridPilot Edge本地服务器，部署在客户虚拟机上，保存13个月数据。远程支持"
            "需客户"
            "开通VPN。")),
}
_TROUBLE = {
    "en": ("Troubleshooting {code}: {subject}",
           "Symptom: {symptom}\n\nBefore you start: note the serial number and export the last 7 days of mo"
           "nitoring "
           "data.\n\nSteps:\n1. Check the alarm history in GridPilot and note the first occurrence.\n2. Con"
           "firm "
           "the firmware version; versions older than {fw} have known issues.\n3. {fix}\n\nIf the problem "
           "persists, open a case with priority high and attach the export."),
    "zh": ("故障排查 {code}：{subject}",
           "现象：{symptom}\n\n开始之前：记录序列号，并导出最近7天的监控数据。\n\n步骤：\n1. 在GridPilot中"
           "查看告警"
           "历史，记录首次出现时间。\n2. 确认固件版本，低于{fw}的版本存在已知问题。\n3. {fix}\n\n如问题仍未"
           "解决，"
           "请提交高优先级工单并附上导出数据。"),
}
_NOTES = {
    "en": ("Release notes {fw}: {name}",
           "Firmware {fw} for the {name} is a {kind} release. Changes: {change}. Install it from GridPilot "
           "> Devices "
           "> Firmware during a low-load window; the unit keeps running on the previous version until the r"
           "estart, "
           "which takes about 4 minutes. Roll back from the same page if needed."),
    "zh": ("固件发布说明 {fw}：{name}",
           "{name}的{fw}固件为{kind}版本。主要变更：{change}。请在低负荷时段通过 GridPilot > 设备 > 固件 升"
           "级；"
           "重启前设备继续以旧版本运行，重启约需4分钟。如有需要可在同一页面回退。"),
}
_CHANGES = {"en": ("improved state-of-charge estimation at low temperature", "faster reconnection after network loss",
                   "new alarm for blocked air inlets", "lower standby power", "fixes a reboot loop after OTA updates"),
            "zh": ("改进低温下的SOC估算", "断网后更快重连", "新增进风口堵塞告警", "降低待机功耗",
                   "修复远程升级后反复重启的问题")}


def _candidates() -> list[tuple[str, str, str, str]]:
    out: list[tuple[str, str, str, str]] = []  # (lang, product code, title, body)
    for lang in ("en", "zh"):
        for p in PRODUCTS:
            name = p.name_zh if lang == "zh" else p.name
            for subject, symptom, fix in ct.ISSUES[lang][p.line]:
                fill = {"code": p.code, "n": 2, "city": "Site A" if lang == "en" else "A站点", "since": "",
                        "alarm": "E-217", "fw": "v4.0.2", "product": name}
                t, b = _TROUBLE[lang]
                out.append((lang, p.code, t.format(code=p.code, subject=subject.format(**fill)),
                            b.format(symptom=symptom.format(**fill), fw="v4.0.2", fix=fix.format(**fill))))
            years, cycles = (10, 6000) if p.line == "ess" else (8, 4000) if p.line == "pack" else (3, 0)
            for j, fw in enumerate(ct.FIRMWARE):
                t, b = _NOTES[lang]
                kind = (("功能", "长期支持") if lang == "zh" else ("feature", "long-term support"))[j % 2]
                out.append((lang, p.code, t.format(fw=fw, name=name),
                            b.format(fw=fw, name=name, kind=kind, change=_CHANGES[lang][j])))
            for bank in (_WARRANTY, _INSTALL, _MAINT):
                t, b = bank[lang]
                out.append((lang, p.code, t.format(name=name), b.format(name=name, years=years, cycles=cycles)))
        for region in (("Mainland China", "中国大陆"), ("North America", "北美"), ("EMEA", "欧洲中东非洲"),
                       ("APAC", "亚太")):
            t, b = _PRICING[lang]
            label = region[1] if lang == "zh" else region[0]
            out.append((lang, "", t.format(region=label), b))
        for t, b in _SECURITY[lang]:
            out.append((lang, "GP", t, b))
    return out


def build_articles(rng: random.Random, n: int) -> list[Row]:
    """``n`` articles drawn from the bank (a third Chinese); beyond the bank, later revisions are added."""
    pool = _candidates()
    en = [c for c in pool if c[0] == "en"]
    zh = [c for c in pool if c[0] == "zh"]
    rng.shuffle(en)
    rng.shuffle(zh)
    n_zh = round(n / 3)
    picked = [zh[i % len(zh)] for i in range(n_zh)] + [en[i % len(en)] for i in range(n - n_zh)]
    rows = []
    for i, (lang, code, title, body) in enumerate(picked, start=1):
        rev = (i - 1 - (0 if lang == "zh" else n_zh)) // (len(zh) if lang == "zh" else len(en))
        created = REFERENCE - timedelta(days=rng.randrange(30, 900))
        updated = created + timedelta(days=rng.randrange(0, 25))
        rows.append({"id": i, "title": title + (f" (rev {rev + 1})" if rev else ""), "body": body, "product": code,
                     "language": lang, "created_at": created, "updated_at": updated, "version": 1 + rev,
                     "custom": {"audience": rng.choice(("customer", "internal"))}})
    return rows
