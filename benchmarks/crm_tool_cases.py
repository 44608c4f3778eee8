"""Held-out CRM tool requests for ``benchmarks.models``: seven realistic tools, 24 requests (12 en, 12 zh)
with the tool and the arguments a right answer has, and 4 small-talk turns where no tool fits.

The tools are pydantic argument models, the form ``bind_tools`` takes. Expected arguments list only what the
request pins down; strings match if they contain one of the accepted spellings (case-folded).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, Field

ObjectType = Literal["account", "contact", "opportunity", "lead", "case"]
Stage = Literal["prospecting", "qualification", "proposal", "negotiation", "won", "lost"]


class search_notes(BaseModel):  # noqa: N801 - the class name is the tool name the model sees
    """Search notes, emails, call logs and case text by meaning (English or Chinese)."""

    query: str = Field(description="What to look for, in the user's words.")
    object_type: ObjectType | None = Field(None, description="Only text attached to this kind of record.")
    limit: int = Field(5, description="How many hits to return.")


class get_record(BaseModel):  # noqa: N801
    """Fetch one CRM record (account = customer company) by its type and numeric id."""

    object_type: ObjectType
    id: int


class list_opportunities(BaseModel):  # noqa: N801
    """List opportunities (deals), optionally filtered."""

    stage: Stage | None = None
    owner: str | None = Field(None, description="Sales rep who owns the deal, by name.")
    min_amount: float | None = Field(None, description="Smallest deal amount, in the account's currency.")
    closing_before: str | None = Field(None, description="Close date upper bound, YYYY-MM-DD.")


class pipeline_summary(BaseModel):  # noqa: N801
    """Totals of open pipeline (count and amount), grouped."""

    group_by: Literal["stage", "owner", "month"]
    quarter: str | None = Field(None, description="Like 2025-Q3; default the current quarter.")


class propose_field_update(BaseModel):  # noqa: N801
    """Propose a change to one field of a record; a person approves it before it is applied."""

    object_type: ObjectType
    id: int
    field: str = Field(description="Field name, e.g. stage, amount, phone, close_date.")
    value: str = Field(description="The new value, as text.")
    reason: str = Field(description="Why, in one sentence, for the approver.")


class log_activity(BaseModel):  # noqa: N801
    """Log a call, email, meeting or note on a record."""

    kind: Literal["call", "email", "meeting", "note"]
    object_type: ObjectType
    id: int
    subject: str = Field(description="One line on what happened.")


class create_lead(BaseModel):  # noqa: N801
    """Create a new lead (a prospective customer not yet qualified)."""

    name: str = Field(description="The person's full name.")
    company: str
    email: str | None = None
    phone: str | None = None
    source: Literal["web", "referral", "event", "cold_call", "partner"] | None = None


TOOLS: list[type[BaseModel]] = [search_notes, get_record, list_opportunities, pipeline_summary,
                                propose_field_update, log_activity, create_lead]


@dataclass(frozen=True)
class Contains:
    """A string argument that is right if it contains any of these (case-folded)."""

    options: tuple[str, ...]

    def __init__(self, *options: str) -> None:
        object.__setattr__(self, "options", options)

    def match(self, value: Any) -> bool:
        """Whether ``value`` is a string holding one of the options."""
        return isinstance(value, str) and any(o.casefold() in value.casefold() for o in self.options)


@dataclass(frozen=True)
class Case:
    """One request: its language, the tool a right answer calls (None: answer in text) and key arguments."""

    lang: Literal["en", "zh"]
    text: str
    tool: str | None
    args: dict[str, Any] = field(default_factory=dict)


def arg_matches(expected: Any, actual: Any) -> bool:
    """Whether one argument value is right (see ``Contains``; numbers by value; other strings case-folded)."""
    if isinstance(expected, Contains):
        return expected.match(actual)
    if isinstance(expected, int | float) and isinstance(actual, int | float) and not isinstance(actual, bool):
        return float(expected) == float(actual)
    if isinstance(expected, str) and isinstance(actual, str):
        return expected.casefold() == actual.strip().casefold()
    return bool(expected == actual)


CASES: list[Case] = [
    Case("en", "Find notes that mention a discount for Acme.", "search_notes", {"query": Contains("discount")}),
    Case("en", "Open account 1042.", "get_record", {"object_type": "account", "id": 1042}),
    Case("en", "Show me contact #77.", "get_record", {"object_type": "contact", "id": 77}),
    Case("en", "Which opportunities are in negotiation right now?", "list_opportunities",
         {"stage": "negotiation"}),
    Case("en", "List Maria Chen's deals above 50,000.", "list_opportunities",
         {"owner": Contains("Maria Chen"), "min_amount": 50000}),
    Case("en", "Give me a pipeline summary by stage.", "pipeline_summary", {"group_by": "stage"}),
    Case("en", "How does the pipeline look per owner for 2025-Q3?", "pipeline_summary",
         {"group_by": "owner", "quarter": "2025-Q3"}),
    Case("en", "Set the amount of opportunity 310 to 42000; the customer added two seats.", "propose_field_update",
         {"object_type": "opportunity", "id": 310, "field": Contains("amount"), "value": Contains("42000", "42,000")}),
    Case("en", "Log a call with contact 55: we discussed renewal terms.", "log_activity",
         {"kind": "call", "object_type": "contact", "id": 55, "subject": Contains("renewal")}),
    Case("en", "Add a lead: Jane Doe from Initech, jane@initech.com.", "create_lead",
         {"name": Contains("Jane Doe"), "company": Contains("Initech"), "email": "jane@initech.com"}),
    Case("en", "Record a meeting on account 9 about the onboarding kickoff.", "log_activity",
         {"kind": "meeting", "object_type": "account", "id": 9, "subject": Contains("onboarding")}),
    Case("en", "Search the cases for complaints about late deliveries.", "search_notes",
         {"query": Contains("late", "deliver"), "object_type": "case"}),
    Case("zh", "帮我找一下提到 Acme 折扣的笔记。", "search_notes", {"query": Contains("折扣", "discount")}),
    Case("zh", "打开客户 2048。", "get_record", {"object_type": "account", "id": 2048}),
    Case("zh", "查看联系人 31 的详细信息。", "get_record", {"object_type": "contact", "id": 31}),
    Case("zh", "列出目前处于谈判阶段的商机。", "list_opportunities", {"stage": "negotiation"}),
    Case("zh", "王芳负责的金额超过 100000 的商机有哪些？", "list_opportunities",
         {"owner": Contains("王芳"), "min_amount": 100000}),
    Case("zh", "按负责人汇总一下销售管道。", "pipeline_summary", {"group_by": "owner"}),
    Case("zh", "按月份给我看 2025-Q4 的管道汇总。", "pipeline_summary", {"group_by": "month", "quarter": "2025-Q4"}),
    Case("zh", "把商机 88 的阶段改成赢单，客户已经签了合同。", "propose_field_update",
         {"object_type": "opportunity", "id": 88, "field": Contains("stage", "阶段"),
          "value": Contains("won", "赢单")}),
    Case("zh", "记录一个与联系人 12 的电话，讨论了续约价格。", "log_activity",
         {"kind": "call", "object_type": "contact", "id": 12, "subject": Contains("续约", "renewal")}),
    Case("zh", "新建一个线索：李雷，来自华为，电话 13800138000。", "create_lead",
         {"name": Contains("李雷"), "company": Contains("华为"), "phone": Contains("13800138000")}),
    Case("zh", "给客户 5 记一条备注：对方希望下周再联系。", "log_activity",
         {"kind": "note", "object_type": "account", "id": 5}),
    Case("zh", "在工单里搜索关于退款的投诉。", "search_notes",
         {"query": Contains("退款", "refund"), "object_type": "case"}),
    Case("en", "Thanks, that's all for now.", None),
    Case("en", "Good morning! Ready to start?", None),
    Case("zh", "谢谢，先这样吧。", None),
    Case("zh", "早上好！", None),
]

# Plain-text answers, to time decoding with and without the tool grammar.
TEXT_PROMPTS = [
    "In about 80 words, explain to a new sales rep why logging every customer call matters.",
    "用大约 80 个字向新销售解释为什么要记录每一次客户电话。",
]
