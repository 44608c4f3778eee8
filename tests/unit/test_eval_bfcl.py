"""The BFCL yardstick: schema conversion, our AST checker on hand-made calls, and runs with scripted models."""

from __future__ import annotations

import re

import jsonschema
import pytest
from langchain_core.messages import AIMessage, BaseMessage

from eval.bfcl import CATEGORIES, Case, evaluate, load_cases, run, sample
from eval.bfcl_check import ANY, call_mismatch, json_schema, normalise, openai_tool, tool_name
from inference.tool_calls import tool_call_grammar
from tests.fixtures.fake_chat import FakeChatModel, block_real_models, call, calls, say


@pytest.fixture(autouse=True)
def _no_real_model(monkeypatch: pytest.MonkeyPatch) -> None:
    block_real_models(monkeypatch)


ROUTE = {
    "name": "maps.route.plan",
    "description": "Plan a route.",
    "parameters": {
        "type": "dict",
        "properties": {
            "start": {"type": "string", "description": "Where from"},
            "stops": {"type": "tuple", "items": {"type": "float"}},
            "speed": {"type": "float", "description": "km/h", "optional": True, "default": 50.0},
            "mode": {"type": "string", "enum": ["car", "bike"]},
            "avoid": {"type": "dict", "properties": {"tolls": {"type": "boolean"}, "ferries": {"type": "boolean"}}},
            "hops": {"type": "integer"},
            "extra": {"type": "any", "format": "whatever"},
        },
        "required": ["start", "hops", "nonexistent"],
    },
}
ANSWER = {"maps.route.plan": {"start": ["New York, NY", "NYC"], "stops": [[1.5, 2.0]], "speed": ["", 60.0],
                              "mode": ["car"], "avoid": ["", {"tolls": [True], "ferries": ["", False]}],
                              "hops": [3]}}
RIGHT = {"start": "new york ny", "stops": [1.5, 2], "speed": 60, "mode": "car", "avoid": {"tolls": True}, "hops": 3}


def test_bfcl_function_docs_become_standard_tool_schemas() -> None:
    tool = openai_tool(ROUTE)
    assert tool["function"]["name"] == "maps_route_plan" == tool_name(ROUTE["name"])
    params = tool["function"]["parameters"]
    assert params["type"] == "object" and params["required"] == ["start", "hops"]  # unknown names dropped
    props = params["properties"]
    assert props["stops"] == {"type": "array", "items": {"type": "number"}}
    assert props["speed"] == {"description": "km/h", "default": 50.0, "type": "number"}  # no "optional"
    assert props["avoid"]["type"] == "object" and props["avoid"]["properties"]["tolls"] == {"type": "boolean"}
    assert props["extra"] == {"type": ANY}  # "any": every type (and no format a grammar might not know)
    assert props["mode"] == {"enum": ["car", "bike"], "type": "string"}
    jsonschema.Draft202012Validator.check_schema(params)
    assert json_schema({"type": "tuple"}) == {"type": "array", "items": {"type": ANY}}


def test_every_case_of_the_three_categories_converts_to_valid_uniquely_named_tools() -> None:
    for category in CATEGORIES:
        cases = load_cases(category)
        assert len(cases) >= 200
        for case in cases:
            tools = case.tools
            names = [t["function"]["name"] for t in tools]
            assert len(set(names)) == len(names) == len(case.names), case.id
            assert all(re.fullmatch(r"[A-Za-z0-9_-]{1,64}", n) for n in names), case.id
            for t in tools:
                jsonschema.Draft202012Validator.check_schema(t["function"]["parameters"])
            tool_call_grammar(tools, choice="auto", parallel=False)  # what bind_tools builds for llama.cpp
            assert (case.answer is None) == (category == "irrelevance"), case.id


@pytest.mark.parametrize(("args", "reason"), [
    (RIGHT, None),
    ({**RIGHT, "start": "NYC"}, None),  # another possible answer
    ({k: v for k, v in RIGHT.items() if k not in ("speed", "avoid")}, None),  # optional ones left out
    ({**RIGHT, "speed": 60.0, "stops": [1.5, 2.0]}, None),
    ({**RIGHT, "avoid": {"tolls": True, "ferries": False}}, None),
    ({k: v for k, v in RIGHT.items() if k != "hops"}, "missing required parameter 'hops'"),
    ({k: v for k, v in RIGHT.items() if k != "mode"}, "missing parameter 'mode'"),
    ({**RIGHT, "lanes": 2}, "unexpected parameter 'lanes'"),
    ({**RIGHT, "extra": 1}, "unexpected parameter 'extra'"),  # in the doc, not in the answer
    ({**RIGHT, "hops": 4}, "hops=4 not among [3]"),
    ({**RIGHT, "hops": 3.0}, "hops=3.0 not among [3]"),  # a float is not an int
    ({**RIGHT, "hops": True}, "hops=True not among [3]"),
    ({**RIGHT, "start": "Boston"}, "start='Boston' not among ['New York, NY', 'NYC']"),
    ({**RIGHT, "stops": [2.0, 1.5]}, "stops=[2.0, 1.5] not among [[1.5, 2.0]]"),
    ({**RIGHT, "stops": [1.5]}, "stops=[1.5] not among [[1.5, 2.0]]"),
    ({**RIGHT, "mode": "Car"}, None),  # strings compare case-insensitively, as BFCL's checker does
    ({**RIGHT, "avoid": {"tolls": False}}, "avoid={'tolls': False} not among ['', {'tolls': [True], "
                                           "'ferries': ['', False]}]"),
    ({**RIGHT, "avoid": {"tolls": True, "boats": True}}, "avoid={'tolls': True, 'boats': True} not among ['', "
                                                         "{'tolls': [True], 'ferries': ['', False]}]"),
])
def test_the_checker_on_hand_made_calls(args: dict[str, object], reason: str | None) -> None:
    assert call_mismatch("maps.route.plan", args, ANSWER, [ROUTE]) == reason


def test_the_checker_names_the_wrong_function_and_normalises_like_bfcl() -> None:
    assert call_mismatch("maps.geocode", RIGHT, ANSWER, [ROUTE]) == "called maps.geocode, expected maps.route.plan"
    assert normalise("New York, NY") == normalise("new-york ny") == "newyorkny"
    assert normalise("it's") == 'it"s'


def test_samples_are_seeded_and_the_perfect_fake_scores_one() -> None:
    simple = load_cases("simple")
    assert [c.id for c in sample(simple, 8)] == [c.id for c in sample(simple, 8)]
    assert len({c.id for c in sample(simple, 100)}) == 100
    quick = run("fake", quick=True, progress=False)
    assert quick.suite == "bfcl" and len(quick.items) == 24
    assert {i.category: 0 for i in quick.items}.keys() == set(CATEGORIES)
    assert all(sum(i.category == c for i in quick.items) == 8 for c in CATEGORIES)
    assert set(quick.metrics.values()) == {1.0} and quick.meta["corpus"] == "bfcl-eval==2026.3.23"
    full = run("fake", progress=False, limit=1000)  # every case: the checker accepts each first possible answer
    assert len(full.items) == sum(len(load_cases(c)) for c in CATEGORIES) and full.metrics["score"] == 1.0


def _case(category: str, index: int) -> Case:
    return load_cases(category)[index]


def test_a_wrong_model_gets_exactly_the_scores_and_reasons_it_earns() -> None:
    simple, multiple, irrelevant = _case("simple", 0), _case("multiple", 0), _case("irrelevance", 0)
    # simple_python_0: calculate_triangle_area(base=10, height=5, unit optional); multiple_0 offers
    # triangle_properties.get and circle_properties.get; irrelevance_0 offers a BMI function for a triangle.
    replies: dict[str, list[AIMessage]] = {
        simple.id: [call("calculate_triangle_area", base=10, height=5), call("calculate_triangle_area", base=10),
                    calls(("calculate_triangle_area", {"base": 10, "height": 5}),
                          ("calculate_triangle_area", {"base": 5, "height": 10}))],
        multiple.id: [call("triangle_properties_get", side1=5, side2=4, side3=3),
                      call("circle_properties_get", radius=3.0), say("I can't.")],
        irrelevant.id: [say("That is not a BMI question."), call("determine_body_mass_index", weight=10.0,
                                                                   height=5.0)],
    }

    def chat_for(case: Case) -> FakeChatModel:
        return FakeChatModel(script=[replies[case.id].pop(0)])

    cases = [simple] * 3 + [multiple] * 3 + [irrelevant] * 2
    result = evaluate(cases, chat_for, model="wrong-fake", progress=False)
    assert [i.score for i in result.items] == [1, 0, 0, 1, 0, 0, 1, 0]
    assert [i.detail.get("reason") for i in result.items] == [
        None, "missing required parameter 'height'", "2 calls, expected 1",
        None, "called circle_properties.get, expected triangle_properties.get", "0 calls, expected 1",
        None, "called a function where none fits"]
    assert result.items[4].detail["called"] == [{"name": "circle_properties.get", "args": {"radius": 3.0}}]
    assert result.metrics == {"score": 0.375, "simple_accuracy": round(1 / 3, 4),
                              "multiple_accuracy": round(1 / 3, 4), "irrelevance_accuracy": 0.5}


def test_the_model_is_asked_the_question_with_the_cases_functions_bound() -> None:
    case = _case("multiple", 0)
    fake = FakeChatModel(script=[call("triangle_properties_get", side1=5, side2=4, side3=3)])
    evaluate([case], lambda _: fake, model="fake", progress=False)
    sent: list[BaseMessage] = fake.requests[0]
    assert [m.type for m in sent] == ["human"] and sent[0].content == case.messages[0]["content"]
    assert [t["function"]["name"] for t in fake.bound_tools[0]] == [tool_name(f["name"]) for f in case.functions]
    assert fake.tool_choices == ["auto"]


def test_a_case_whose_call_fails_fails_alone() -> None:
    good, bad = _case("irrelevance", 0), _case("irrelevance", 1)

    def chat_for(case: Case) -> FakeChatModel:
        if case is bad:
            raise ValueError("no grammar for this schema")
        return FakeChatModel(script=[say("No.")])

    result = evaluate([bad, good], chat_for, model="fake", progress=False)
    assert [i.score for i in result.items] == [0.0, 1.0]
    assert result.items[0].detail["reason"] == "model call failed: ValueError: no grammar for this schema"
