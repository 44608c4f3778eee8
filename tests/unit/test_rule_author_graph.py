"""The rule_author graph: grammar first, then the constrained model with bounded repairs, questions back."""

from __future__ import annotations

import json

from langchain_core.language_models.fake_chat_models import FakeListChatModel

from agents.rule_author import compile_rule
from agents.rule_author.context import Context

OUTSIDE_GRAMMAR = "Whenever somebody from a bank reads our blog, please log a lead for them"
MODEL_RULE = {"trigger": {"kind": "event", "filter": {"types": ["page_view"], "page_prefix": "/blog"}},
              "actions": [{"type": "create_lead", "pool": "general"}]}


def test_grammar_path_compiles_and_explains_without_a_model() -> None:
    state = compile_rule("When a customer submits a form, notify the owner", context=Context(use_model=False))
    assert state.path == "grammar" and state.rule is not None
    assert "form submission" in state.explanation and "notify the record's owner" in state.explanation


def test_model_output_that_fails_validation_is_repaired() -> None:
    chat = FakeListChatModel(responses=['{"trigger": {"kind": "event"}}', json.dumps(MODEL_RULE)])
    state = compile_rule(OUTSIDE_GRAMMAR, context=Context(chat=chat))
    assert state.path == "model" and state.rule is not None
    assert state.rule.trigger.filter.page_prefix == "/blog"
    assert state.explanation.startswith("When a customer's event arrives")


def test_model_that_never_validates_becomes_a_question() -> None:
    chat = FakeListChatModel(responses=["nope"] * 3)
    state = compile_rule(OUTSIDE_GRAMMAR, context=Context(chat=chat, repair_attempts=2))
    assert state.rule is None and state.questions[0].id == "rephrase"


def test_model_naming_an_unknown_pool_gets_a_question() -> None:
    bad = {**MODEL_RULE, "actions": [{"type": "create_lead", "pool": "platinum"}]}
    state = compile_rule(OUTSIDE_GRAMMAR, context=Context(chat=FakeListChatModel(responses=[json.dumps(bad)])))
    assert state.rule is None and state.questions[0].id == "pool"
    answered = compile_rule(OUTSIDE_GRAMMAR, clarifications={"pool": "vip"},
                            context=Context(chat=FakeListChatModel(responses=[json.dumps(bad)])))
    assert answered.rule is not None and answered.rule.actions[0].pool == "vip"


def test_a_model_rule_on_a_field_the_object_lacks_comes_back_as_a_question() -> None:
    bad = {"trigger": {"kind": "schedule", "object": "case", "date_field": "resolution", "offset_minutes": -60},
           "conditions": [{"kind": "aggregate", "fn": "count", "op": "ge", "value": 2}],
           "actions": [{"type": "escalate", "to": "support_lead"}]}
    state = compile_rule(OUTSIDE_GRAMMAR, context=Context(chat=FakeListChatModel(responses=[json.dumps(bad)])))
    assert state.rule is None and state.questions[0].id == "rephrase"
    assert "'resolution' is not a date of case" in state.questions[0].text
    assert "aggregate condition counts web events" in state.questions[0].text


def test_few_shot_prompt_carries_examples_compiled_by_the_grammar() -> None:
    from agents.rule_author.graph import messages_for
    from rules.catalog import file_catalog

    system = messages_for("x", file_catalog(), few_shot=True)[0].content
    assert "VIP销售池" in system and '"kind":"schedule"' in system
    assert "Examples" not in messages_for("x", file_catalog(), few_shot=False)[0].content
