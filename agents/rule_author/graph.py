"""rule_author: grammar first, the model (constrained to the Rule schema, bounded repairs) for what it misses.

grammar ──rule──────────────► check ──► explain ──► END
│ └─questions──► END          └─questions──► END
└─no parse──► model ──► check
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

import yaml
from langchain_core.messages import HumanMessage, SystemMessage
from langgraph.graph import END, START, StateGraph
from langgraph.runtime import Runtime

from agents.rule_author.context import Context
from agents.rule_author.state import InputState, State
from inference.constrained import generate_typed, typed_chat
from inference.errors import InvalidModelOutput, LLMError
from prompts.loader import load_prompt
from rules.catalog import Catalog, file_catalog
from rules.explain import explain as render
from rules.language import Assign, CreateLead, Rule
from rules.parser import Option, Question, language_of, parse
from rules.records import rule_problems

EXAMPLES = Path(__file__).resolve().parent / "examples.yaml"


def _catalog(runtime: Runtime[Context]) -> Catalog:
    return (runtime.context.catalog if runtime.context else None) or file_catalog()


def grammar(state: State, runtime: Runtime[Context]) -> dict[str, Any]:
    """Parse with the grammar; its questions go straight back to the manager."""
    language = language_of(state.text)
    if runtime.context and not runtime.context.use_grammar:
        return {"language": language, "grammar_error": "grammar path off"}
    result = parse(state.text, catalog=_catalog(runtime), clarifications=state.clarifications)
    return {"language": language, "rule": result.rule, "questions": result.questions, "grammar_error": result.error,
            "path": "grammar" if result.rule or result.questions else "none"}


@lru_cache(maxsize=4)
def few_shot_block(catalog: Catalog) -> str:
    """The examples, each with the Rule JSON the grammar compiles it to."""
    lines = ["Examples:"]
    for text in yaml.safe_load(EXAMPLES.read_text(encoding="utf-8")):
        result = parse(text, catalog=catalog)
        assert result.rule is not None, f"example does not parse: {text}"
        body = result.rule.model_dump_json(exclude={"name", "limits"}, exclude_none=True)
        lines.append(f"Rule: {text}\nJSON: {body}")
    return "\n".join(lines)


def messages_for(text: str, catalog: Catalog, *, few_shot: bool) -> list[Any]:
    """System prompt (pools, optional few-shot examples) and the manager's text."""
    prompt = load_prompt("rule_author")
    system = prompt.render(pools=", ".join(sorted(catalog.pool_keys)),
                           examples=few_shot_block(catalog) if few_shot else "")
    return [SystemMessage(content=system), HumanMessage(content=f"Rule: {text}\nJSON:")]


def model(state: State, runtime: Runtime[Context]) -> dict[str, Any]:
    """Constrained decoding against the Rule schema with bounded repairs; failure becomes a question."""
    ctx = runtime.context or Context()
    lang = state.language
    if not ctx.use_model:
        return {"questions": [_rephrase(lang, state.grammar_error)]}
    prompt = load_prompt("rule_author")
    chat = ctx.chat or typed_chat(Rule, actor="rule_author", prompt=prompt.ref)
    try:
        rule = generate_typed(chat, messages_for(state.text, _catalog(runtime), few_shot=ctx.few_shot), Rule,
                              attempts=ctx.repair_attempts)
    except (InvalidModelOutput, LLMError) as exc:
        return {"questions": [_rephrase(lang, exc.message)], "model_attempts": ctx.repair_attempts + 1}
    except Exception as exc:  # the engine is down or unreachable: still a question, not a 500
        return {"questions": [_rephrase(lang, f"model unavailable: {type(exc).__name__}")]}
    return {"rule": rule.model_copy(update={"name": state.text.strip()[:200], "language": lang}), "path": "model"}


def _rephrase(lang: str, why: str) -> Question:
    text = ("这条规则我没能理解。请换一种说法,写明触发条件(如“当客户提交表单时”)和要执行的动作(如“创建线索”)。"
            if lang == "zh" else "I could not understand this rule. Please rephrase it with a trigger (\"when a "
            "customer submits a form\") and an action (\"create a lead\").")
    return Question(id="rephrase", text=text, options=[Option(value="", label=why[:200])])


def check(state: State, runtime: Runtime[Context]) -> dict[str, Any]:
    """A model's rule may name pools that do not exist: ask instead of guessing."""
    if state.rule is None:
        return {}
    problems = rule_problems(state.rule)
    if problems:  # e.g. a field the object doesn't have: say so, rather than store a rule that never fires
        lead = "这条规则无法执行:" if state.language == "zh" else "This rule can't run as written: "
        return {"rule": None, "questions": [Question(id="rephrase", text=lead + "; ".join(problems),
                                                     options=[Option(value="", label=p[:200]) for p in problems])]}
    catalog = _catalog(runtime)
    questions = []
    actions = []
    for action in state.rule.actions:
        pool = action.pool if isinstance(action, CreateLead | Assign) else None
        if pool and pool not in catalog.pool_keys and state.clarifications.get("pool") in catalog.pool_keys:
            action = action.model_copy(update={"pool": state.clarifications["pool"]})
        actions.append(action)
        if pool and pool not in catalog.pool_keys and "pool" not in state.clarifications:
            questions.append(Question(
                id="pool", text=(f"系统中没有名为“{pool}”的线索池。应分配到哪个线索池?" if state.language == "zh"
                                 else f"There is no pool called '{pool}'. Which pool should it go to?"),
                options=[Option(value=d.key, label=d.label) for d in catalog.pools]))
    if questions:
        return {"rule": None, "questions": questions}
    return {"rule": state.rule.model_copy(update={"actions": actions})}


def explain(state: State) -> dict[str, Any]:
    """The deterministic explanation, in the manager's language."""
    assert state.rule is not None
    return {"explanation": render(state.rule, "zh" if state.language == "zh" else "en")}


def after_grammar(state: State) -> Literal["check", "model", "__end__"]:
    """A rule goes to the check, questions go back, no parse goes to the model."""
    if state.rule is not None:
        return "check"
    if state.questions:
        return END
    return "model"


def after_check(state: State) -> Literal["explain", "__end__"]:
    """Explain a rule that passed; otherwise the questions go back."""
    return "explain" if state.rule is not None else END


builder = StateGraph(State, input_schema=InputState, context_schema=Context)
builder.add_node(grammar)
builder.add_node(model)
builder.add_node(check)
builder.add_node(explain)
builder.add_edge(START, "grammar")
builder.add_conditional_edges("grammar", after_grammar)
builder.add_edge("model", "check")
builder.add_conditional_edges("check", after_check)
builder.add_edge("explain", END)
graph = builder.compile(name="rule_author")


def compile_rule(text: str, *, clarifications: dict[str, str] | None = None, context: Context | None = None) -> State:
    """Run the graph once; the returned state has ``rule`` + ``explanation``, or ``questions``."""
    out = graph.invoke({"text": text, "clarifications": dict(clarifications or {})}, context=context or Context())
    return State(**out)
