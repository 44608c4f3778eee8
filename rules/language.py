"""The rule language: a typed, versioned ``Rule`` (pydantic) with a JSON schema for constrained decoding.

A rule is one trigger, conditions that must all hold, and actions that go through the proposal path.
Every part is a closed union discriminated by ``kind``/``type``, so a model constrained to the schema
can only produce rules the engine can run, and the explainer can say exactly what each part does.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

SCHEMA_VERSION = 1

# Event types the web tracker sends (``crm.demo.events`` produces the same).
EVENT_TYPES = ("page_view", "pricing_view", "form_submit", "email_open", "download", "video_play",
               "demo_request")
EventType = Literal["page_view", "pricing_view", "form_submit", "email_open", "download", "video_play",
                    "demo_request"]
RecordObject = Literal["lead", "contact", "account", "opportunity", "case", "activity"]
Op = Literal["eq", "ne", "gt", "ge", "lt", "le", "in", "not_in"]
Scalar = str | int | float | bool | None
# Who an action is for; resolved against the triggering record when it fires.
# ``customer_owner``: the owner of the existing customer identity resolution matched the record to.
Recipient = Literal["owner", "account_owner", "team_manager", "support_lead", "author", "customer_owner"]
# Scores ``crmind scores compute`` keeps (customers/): a lead's conversion, a deal's win, an account's health,
# RFM and lifetime value.
ScoreKind = Literal["lead", "win", "health", "rfm", "ltv"]


class _Part(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class EventFilter(_Part):
    """Which events count: their types, a page (prefix), and a per-event minimum duration."""

    types: list[EventType] = Field(default_factory=list, description="Empty means any event type.")
    page_prefix: str | None = Field(None, description="Only events whose page starts with this ('/pricing').")
    min_duration_s: int | None = Field(None, ge=0, description="Only events that lasted at least this long.")


class EventTrigger(_Part):
    """Fires on each incoming web or app event that matches ``filter``."""

    kind: Literal["event"] = "event"
    filter: EventFilter = Field(default_factory=EventFilter)


class RecordTrigger(_Part):
    """Fires when a CRM record is created, or a field of it changes (to ``to_value``, if given)."""

    kind: Literal["record"] = "record"
    object: RecordObject
    on: Literal["created", "field_changed"]
    field: str | None = None
    to_value: Scalar = None


class ScheduleTrigger(_Part):
    """Fires per record on a schedule: ``offset_minutes`` from ``date_field`` (negative: before), or daily."""

    kind: Literal["schedule"] = "schedule"
    object: RecordObject
    date_field: str | None = Field(None, description="None: checked once a day for every record.")
    offset_minutes: int = 0


Trigger = Annotated[EventTrigger | RecordTrigger | ScheduleTrigger, Field(discriminator="kind")]


class FieldCondition(_Part):
    """A field of the triggering event or record compared with a value (``custom.<name>`` for custom fields)."""

    kind: Literal["field"] = "field"
    field: str
    op: Op
    value: Scalar | list[str] = None


class AggregateCondition(_Part):
    """Per customer, over the last ``window_minutes``: count of matching events, or the sum of their durations."""

    kind: Literal["aggregate"] = "aggregate"
    fn: Literal["count", "sum_duration"]
    filter: EventFilter = Field(default_factory=EventFilter)
    window_minutes: int = Field(1440, ge=1, le=527_040)
    op: Literal["gt", "ge", "lt", "le", "eq"]
    value: float


class SequenceCondition(_Part):
    """Per customer: events matching each step, in order, with the last within ``within_minutes`` of the first."""

    kind: Literal["sequence"] = "sequence"
    steps: list[EventFilter] = Field(min_length=2, max_length=5)
    within_minutes: int = Field(1440, ge=1, le=527_040)


class InactivityCondition(_Part):
    """The record has had no activity logged for ``days`` days."""

    kind: Literal["no_activity"] = "no_activity"
    days: int = Field(ge=1, le=3650)


class ScoreCondition(_Part):
    """A score compared with a value: 0-100 for lead, win and health; money for ltv.

    Health, rfm and ltv are the account's (the record's own account).
    """

    kind: Literal["score"] = "score"
    score: ScoreKind
    op: Literal["gt", "ge", "lt", "le", "eq"]
    value: float


class SegmentCondition(_Part):
    """The record's band or segment: an RFM segment (at_risk, champions...) or a health band (at_risk, watch...)."""

    kind: Literal["segment"] = "segment"
    of: Literal["rfm", "health", "lead", "win"] = "rfm"
    label: str = Field(min_length=1, max_length=60)


class IdentityCondition(_Part):
    """The record (a lead or contact) matches an existing customer: identity resolution links it to an older record."""

    kind: Literal["identity"] = "identity"
    matches: Literal["existing_customer"] = "existing_customer"


Condition = Annotated[FieldCondition | AggregateCondition | SequenceCondition | InactivityCondition | ScoreCondition
                      | SegmentCondition | IdentityCondition, Field(discriminator="kind")]


class _Action(_Part):
    bulk: bool = Field(False, description="Acts on many records at once (always needs a person).")


class CreateLead(_Action):
    """Create a lead for the customer, in ``pool``."""

    type: Literal["create_lead"] = "create_lead"
    pool: str = "general"
    score: int | None = Field(None, ge=0, le=100)


class CreateContact(_Action):
    """Create a contact from the customer's details."""

    type: Literal["create_contact"] = "create_contact"


class CreateTask(_Action):
    """Create a follow-up task (an activity) for ``assignee``, due in ``due_in_days``."""

    type: Literal["create_task"] = "create_task"
    assignee: Recipient = "owner"
    subject: str = "Follow up"
    due_in_days: int = Field(1, ge=0, le=365)


class UpdateField(_Action):
    """Set a field of the triggering record."""

    type: Literal["update_field"] = "update_field"
    field: str
    value: Scalar


class Assign(_Action):
    """Move the triggering record to a pool (leads), a queue (cases) or an owner (an owner change)."""

    type: Literal["assign"] = "assign"
    pool: str | None = None
    queue: str | None = None
    owner: Recipient | None = None


class Notify(_Action):
    """Tell a person inside the company (a note on the record, addressed to them)."""

    type: Literal["notify"] = "notify"
    recipient: Recipient
    message: str = ""


class Escalate(_Action):
    """Mark the case escalated and hand it to ``to``."""

    type: Literal["escalate"] = "escalate"
    to: Recipient = "support_lead"


class SendMessage(_Action):
    """Send the customer a message by email or SMS."""

    type: Literal["send_message"] = "send_message"
    channel: Literal["email", "sms"] = "email"
    template: str = ""


class Export(_Action):
    """Send fields of records to a destination (a URL or a file)."""

    type: Literal["export"] = "export"
    object: RecordObject = "contact"
    fields: list[str] = Field(default_factory=list)
    destination: str = ""


class Delete(_Action):
    """Delete the triggering record."""

    type: Literal["delete"] = "delete"
    object: RecordObject = "lead"


Action = Annotated[CreateLead | CreateContact | CreateTask | UpdateField | Assign | Notify | Escalate | SendMessage
                   | Export | Delete, Field(discriminator="type")]
ACTION_TYPES = ("create_lead", "create_contact", "create_task", "update_field", "assign", "notify", "escalate",
                "send_message", "export", "delete")


class ApprovalPolicy(_Part):
    """Whether the rule's own policy approves its proposals. Delete, owner change, bulk and export never are."""

    auto_approve: bool = False


class Limits(_Part):
    """Rate limits and the cap on rules triggering rules."""

    max_fires_per_hour: int = Field(1000, ge=1, le=1_000_000)
    max_fires_per_customer_per_day: int = Field(1, ge=1, le=1000)
    max_depth: int = Field(3, ge=1, le=10, description="A change made by a rule at this depth triggers no rule.")


class Rule(_Part):
    """One automation rule: when ``trigger`` fires and every condition holds, propose ``actions``."""

    schema_version: Literal[1] = SCHEMA_VERSION
    name: str = Field("", max_length=200)
    language: Literal["en", "zh"] = "en"
    trigger: Trigger
    conditions: list[Condition] = Field(default_factory=list, max_length=10)
    actions: list[Action] = Field(min_length=1, max_length=10)
    approval: ApprovalPolicy = Field(default_factory=ApprovalPolicy)
    limits: Limits = Field(default_factory=Limits)


def rule_json_schema() -> dict[str, Any]:
    """The ``Rule`` JSON schema (what constrained decoding and ``/v1/rules/schema`` use)."""
    schema = Rule.model_json_schema()
    schema["$id"] = f"https://crmind.dev/schemas/rule/v{SCHEMA_VERSION}.json"
    return schema


HUMAN_ONLY = frozenset({"delete", "export"})


def needs_person(action: BaseModel) -> bool:
    """True when a rule may never approve this action by itself (delete, export, bulk, owner change)."""
    kind = getattr(action, "type", "")
    return bool(getattr(action, "bulk", False)) or kind in HUMAN_ONLY or (
        kind == "assign" and getattr(action, "owner", None) is not None)


def normalised(rule: Rule) -> dict[str, Any]:
    """A canonical form for semantic equality: no name or language, lists of filters and types sorted."""
    data = rule.model_dump(mode="json", exclude={"name", "language"})

    def walk(node: Any) -> Any:
        if isinstance(node, dict):
            out = {k: walk(v) for k, v in node.items()}
            if "types" in out and isinstance(out["types"], list):
                out["types"] = sorted(out["types"])
            return out
        if isinstance(node, list):
            return [walk(v) for v in node]
        if isinstance(node, float) and node.is_integer():
            return int(node)
        return node

    result = walk(data)
    for action in result["actions"]:  # free text a person reads, not what the rule does
        for key in ("subject", "message", "template"):
            action.pop(key, None)
    result["conditions"] = sorted(result["conditions"], key=lambda c: repr(sorted(c.items())))
    result["actions"] = sorted(result["actions"], key=lambda c: repr(sorted(c.items())))
    return result
