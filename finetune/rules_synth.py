"""Rule compilation examples for the rule_author model step: a manager's rule text -> the typed Rule as JSON.

Texts are composed from trigger and action phrasings (English and Chinese) with varied numbers, pools and people,
then labelled by the grammar path (``rules.parser``), the same way the model's few-shot examples are: a text the
grammar does not compile without questions, or whose rule the engine could not run, is not used. The prompt is
exactly the one the graph's model step sends (``agents.rule_author.graph.messages_for`` with the file catalog and
the few-shot examples), and the target is the Rule JSON in the form those examples show.
"""

from __future__ import annotations

import random
from collections.abc import Iterator

from agents.rule_author.graph import messages_for
from finetune.examples import Example, openai_messages, text_target
from rules.catalog import file_catalog
from rules.language import Rule
from rules.parser import language_of, parse
from rules.records import rule_problems

# Trigger phrasings with their slots; {n} minutes, {k} times, {d} days, {h} hours, {amt} amount, {stage}.
TRIGGERS = {
    "en": (
        "a visitor lingers on the web site for more than {n} minutes overall",
        "somebody browses for over {n} minutes on our website combined",
        "a prospect remains over {n} mins per session",
        "a buyer hits the price list no fewer than {k} times over the last {d} days",
        "a web visitor opens the docs page {k} times or more in the past {d} days",
        "a prospect books a demo",
        "a user submits the contact form",
        "a customer downloads a resource {k} times inside of {d} days",
        "a known contact plays a video",
        "a new sales lead arrives",
        "a new support ticket gets created",
        "a deal's sales stage advances to {stage}",
        "an opportunity's stage becomes {stage}",
        "a support case is still unresolved {h} hours before its sla",
        "an opp worth over ${amt}k has had no logged activity for {d} days",
        "a deal above ¥{amt}0,000 has been idle for {d} days",
        "a new lead is a returning customer",
        "a visitor opens the price list, then books a demo inside of {d} days",
    ),
    "zh": (
        "访客在网站上合计逗留超{n}分钟",
        "买家在官方网站一共待了超过{n}分钟",
        "潜在客户单次访问停留多于{n}分钟",
        "访客最近{d}天打开报价页不少于{k}次",
        "用户过去{d}天浏览文档页{k}次及以上",
        "买家预约演示",
        "潜在客户填写表单",
        "用户{d}天之内下载白皮书满{k}次",
        "客户播放视频",
        "录入了新的销售线索",
        "新建了支持工单",
        "销售机会的阶段推进到{stage}",
        "支持工单在sla截止前{h}个小时还没解决",
        "金额高于{amt}万元的项目{d}天无跟进",
        "新线索与现有客户匹配",
        "访客先打开报价页，再在{d}天内预约演示",
    ),
}
STAGES = {"en": ("negotiating", "proposal", "qualification", "closed-lost", "closed won"),
          "zh": ("谈判", "报价阶段", "需求确认", "丢单", "已成交")}
ACTIONS = {
    "en": (
        "generate a high-intent lead into the {pool} bucket",
        "add a lead to the {pool} sales pool",
        "make a warm lead and allocate it to the {pool} pool",
        "ping the sales manager",
        "let know the account's owner",
        "add a to-do for the deal owner",
        "bump it to the head of support",
        "route it to the billing queue",
        "inform their manager",
        "create a call task for the account manager",
        "hand it to the existing customer's owner",
        "notify me",
    ),
    "zh": (
        "生成高价值线索，划入{pool}公海",
        "新增线索并转入{pool}销售池",
        "产生一条中意向线索，放入{pool}线索池",
        "知会销售主管",
        "告知账户负责人",
        "帮跟进人新建一个回访任务",
        "上报给客服主管",
        "转给财务队列",
        "通知经理",
        "替客户经理建一个待办任务",
        "转给原客户负责人",
        "提醒我",
    ),
}
POOLS = {"en": ("vip", "enterprise", "smb", "nurture", "general", "key account", "marketing nurture"),
         "zh": ("贵宾", "大客户", "中小客户", "孵化", "通用", "重点客户", "市场培育")}
FRAMES = {
    "en": ("When {t}, {a}", "If {t}, then {a}.", "Whenever {t}, {auto}{a}", "As soon as {t}: {a}", "{A} once {t}",
           "Every time {t}, {auto}{a}", "{A} if {t}."),
    "zh": ("当{t}时，{a}", "如果{t}，{auto}{a}", "一旦{t}，就{a}", "{t}后{auto}{a}", "每当{t}的时候，{a}",
           "若{t}，则{a}", "假如{t}，{a}。"),
}
AUTO = {"en": ("automatically ", "", "without approval "), "zh": ("自动", "", "直接")}


def rule_texts(rng: random.Random) -> Iterator[str]:
    """Endless rule texts in both languages (half Chinese)."""
    while True:
        lang = rng.choice(("en", "zh"))
        trigger = rng.choice(TRIGGERS[lang]).format(
            n=rng.choice((2, 3, 4, 5, 6, 8, 10)), k=rng.choice((2, 3, 4, 5)), d=rng.choice((2, 3, 5, 7, 10, 14, 21)),
            h=rng.choice((1, 2, 3, 6, 8, 12)), amt=rng.choice((15, 20, 30, 40, 80)), stage=rng.choice(STAGES[lang]))
        actions = rng.sample(ACTIONS[lang], rng.choice((1, 1, 2)))
        joined = (" and " if lang == "en" else "，并").join(actions).format(pool=rng.choice(POOLS[lang]))
        frame = rng.choice(FRAMES[lang])
        yield frame.format(t=trigger, a=joined, A=joined[:1].upper() + joined[1:], auto=rng.choice(AUTO[lang]))


def target_json(rule: Rule) -> str:
    """The Rule as the model is taught to write it (the few-shot examples' form)."""
    return rule.model_dump_json(exclude={"name", "limits"}, exclude_none=True)


def rule_example(text: str) -> Example | None:
    """The model step's prompt for ``text`` and the rule the grammar compiles it to; None if there is none."""
    catalog = file_catalog()
    result = parse(text, catalog=catalog)
    if result.rule is None or result.questions or rule_problems(result.rule):
        return None
    if any(getattr(a, "pool", None) not in (None, *catalog.pool_keys) for a in result.rule.actions):
        return None
    body = target_json(result.rule)
    Rule.model_validate_json(body)  # what the graph's constrained call validates the model's output against
    messages = [*openai_messages(messages_for(text, catalog, few_shot=True)), text_target(body)]
    return Example(source="synthetic", kind="rule", language=language_of(text), prompt="rule_author",
                   messages=messages)


def rule_examples(n: int, rng: random.Random, max_tries: int = 20) -> tuple[list[Example], int]:
    """``n`` distinct rule examples, and how many generated texts the grammar could not label."""
    out: dict[str, Example] = {}
    unlabelled = 0
    texts = rule_texts(rng)
    for _ in range(n * max_tries):
        if len(out) >= n:
            break
        example = rule_example(next(texts))
        if example is None:
            unlabelled += 1
        else:
            out.setdefault(example.id, example)
    return list(out.values()), unlabelled
