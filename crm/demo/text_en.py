"""English sentence banks for sales stories; placeholders are filled from a per-activity context."""

from __future__ import annotations

# Placeholders: {acct} {city} {c1} {t1} {c1f} {c2} {t2} {rep} {product} {code} {qty} {budget} {competitor}
# {objection} {next} {golive} {mins} {vendor} {loss} {kw} {sites}
OPENERS = {
    "call": (
        "Call with {c1} ({t1}), about {mins} minutes.",
        "Spoke with {c1}, {t1}, by phone.",
        "Phone call with {c1} ({t1}) and {c2} ({t2}).",
        "Call summary: {c1} ({t1}) joined, {c2} dialled in late.",
        "Had a {mins}-minute call with {c1}, their {t1}.",
        "Teams call with {c1} ({t1}); {c2} ({t2}) listened in.",
        "Follow-up call with {c1} ({t1}).",
    ),
    "meeting": (
        "Meeting at {acct}'s {city} office with {c1} ({t1}) and {c2} ({t2}).",
        "On-site meeting in {city}: {c1} ({t1}), {c2} ({t2}) and two of their engineers.",
        "Workshop with {c1} ({t1}) and {c2} ({t2}) at their site.",
        "Lunch meeting with {c1} ({t1}) near their {city} headquarters.",
        "Video meeting with {c1} ({t1}), {c2} ({t2}) and our solutions engineer.",
        "Met {c1} ({t1}) and {c2} ({t2}) for {mins} minutes.",
    ),
    "email": (
        "Hi {c1f},\n\nThanks for your time this week.",
        "Dear {c1f},\n\nFollowing up on our conversation.",
        "Hello {c1f},\n\nAs promised, a short summary.",
        "Hi {c1f},\n\nQuick update from our side.",
        "Dear {c1f},\n\nThank you for the detailed questions.",
    ),
    "note": (
        "Internal note on {acct}.",
        "Deal note:",
        "Notes for the team on the {acct} opportunity.",
        "Pipeline review note:",
        "Update after talking to {c1} ({t1}).",
    ),
}
SIGN_OFF = ("\n\nBest regards,\n{rep}", "\n\nKind regards,\n{rep}\n" + "Helios Grid Systems",
            "\n\nThanks,\n{rep}", "\n\nCheers,\n{rep}")

STAGE_LINES = {
    "prospecting": (
        "Introduced {vendor} and the {product}; {c1} said they are reviewing energy costs after last winter"
        "'s "
        "peak tariffs.",
        "{c1} downloaded our case study on peak shaving and asked what a system for {sites} sites would loo"
        "k like.",
        "They run {sites} sites and pay demand charges on roughly {kw} kW of peak load.",
        "{acct} is early: no budget yet, but {c1} wants a rough idea of payback before talking to finance.",
        "Met {c1} at the trade show booth; they are interested in the {product} for their {city} plant.",
        "Their current setup is diesel backup plus grid; {c1} is looking at storage to cut demand charges.",
        "{c1} asked for references in their industry, ideally within 200 km of {city}.",
        "Sent the product overview and a two-page brief on the {product}.",
    ),
    "qualification": (
        "{c1} confirmed a budget of roughly {budget} for this fiscal year.",
        "Decision maker is {c2} ({t2}); {c1} will build the business case.",
        "Timeline: they want the system live before {golive}.",
        "Budget sits with {c2} ({t2}); anything above {budget} needs board approval.",
        "Need is real: they had three outages last quarter and lost a production shift each time.",
        "{c1} said the project is in next year's capex plan at about {budget}.",
        "Buying process: technical evaluation first, then procurement runs a tender with at least two vendo"
        "rs.",
        "They are also talking to {competitor}, but {c1} says nothing is decided.",
    ),
    "needs_analysis": (
        "Walked through the single-line diagram; peak demand is around {kw} kW at the main site.",
        "{c2} ({t2}) wants to see how the {product} integrates with their existing SCADA.",
        "Main concern raised: {objection}.",
        "Agreed on a site survey; our engineer will check the transformer and cable routing.",
        "Requirements so far: {qty} units, remote monitoring, and a 10-year performance guarantee.",
        "{c1} shared 12 months of load data; we will model the savings and come back with sizing.",
        "They asked for a sample integration with their ERP for invoicing and asset tracking.",
        "Their IT team sent a 40-question security questionnaire for the cloud monitoring part.",
    ),
    "proposal": (
        "Sent the proposal: {qty} x {product}, {budget} in total including installation.",
        "Presented the proposal to {c1} and {c2}; they liked the payback of just under four years.",
        "They are comparing our quote against {competitor}.",
        "{c2} ({t2}) asked for two options: the full scope and a phased rollout.",
        "Objection on the proposal: {objection}.",
        "Revised the proposal after feedback; price now {budget} with a five-year service plan.",
        "{c1} says the proposal is with finance; {competitor} submitted theirs last week.",
        "Walked them through the warranty terms and the remote monitoring SLA.",
    ),
    "negotiation": (
        "{c2} ({t2}) pushed back on price; {competitor} is reportedly about 8% cheaper.",
        "Legal is reviewing the MSA; redlines expected by {next}.",
        "Negotiating payment terms: they want 30% on delivery and 70% after commissioning.",
        "Offered a 5% discount in exchange for a three-year service contract; {c1} will take it to {c2}.",
        "Procurement asked us to hold the price of {budget} until the end of the quarter.",
        "Remaining blocker: {objection}.",
        "{c1} hinted that we are the preferred vendor if we can match the delivery date.",
        "Agreed final scope with {c1}; only the liability cap is still open.",
    ),
    "closed_won": (
        "Signed! PO received for {budget}.",
        "{c2} ({t2}) signed the contract; kick-off with their project team is booked.",
        "Won against {competitor}; {c1} said our remote monitoring and local service team made the differen"
        "ce.",
        "Contract countersigned; delivery of {qty} x {product} planned before {golive}.",
        "Closed won at {budget}. Handover to the delivery team done.",
    ),
    "closed_lost": (
        "Lost. {loss}",
        "{c1} called to say they will not go ahead with us. {loss}",
        "Closed lost: {loss}",
        "Bad news from {acct}: {loss}",
    ),
}
NEXT_STEPS = (
    "Next step: send the revised quote by {next}.",
    "Agreed to reconvene on {next} with their engineering team.",
    "Action: book a site survey for the week of {next}.",
    "Follow up with {c1} on {next}.",
    "Next: reference call with an existing customer before {next}.",
    "{c1} will confirm internal approval by {next}.",
    "We owe them the savings model by {next}.",
    "Next meeting pencilled in for {next}.",
)
OBJECTIONS = (
    "price: the quote is above what finance expected",
    "integration with their existing SCADA and ERP",
    "the security review of our cloud monitoring",
    "warranty terms after year 10",
    "delivery time, since they need units before the summer peak",
    "fire safety certification for indoor installation",
    "payback period, which finance wants under four years",
    "local service coverage outside business hours",
)
LOSS_REASONS = (
    "They went with {competitor} on price.",
    "Budget was frozen after a reorganisation.",
    "Project postponed to next year; {c1} will reach out again.",
    "{competitor} offered a longer warranty and faster delivery.",
    "The board decided to lease instead of buy.",
    "No decision: the sponsor left the company.",
)
SUBJECTS = {
    "prospecting": ("Intro: {vendor} x {acct}", "Energy storage for {acct}", "Following up from the trade show",
                    "{product} overview"),
    "qualification": ("Next steps for {acct}", "Budget and timeline", "Discovery call follow-up",
                      "Questions before we size the system"),
    "needs_analysis": ("Site survey at {city}", "Load data and sizing", "Security questionnaire",
                       "Integration questions", "Technical workshop summary"),
    "proposal": ("Proposal: {qty} x {product}", "Revised proposal for {acct}", "Pricing options",
                 "Proposal follow-up"),
    "negotiation": ("Contract redlines", "Commercial terms", "Final pricing for {acct}", "Payment terms"),
    "closed_won": ("Contract signed - welcome aboard", "Kick-off planning", "PO confirmation"),
    "closed_lost": ("Decision on the {product} project", "Thank you and next time", "Project update"),
}
KIND_LABEL = {"call": "Call", "meeting": "Meeting", "note": "Note"}
ACCOUNT_NOTES = (
    "Quarterly business review with {c1} ({t1}): uptime at 99.{mins}%, they are happy with the monitoring p"
    "ortal.",
    "{c1} ({t1}) mentioned a new plant opening in {golive}; could be an upsell for the {product}.",
    "Check-in call with {c1}. No open issues; asked about the roadmap for the next firmware release.",
    "Renewal of the service contract is due {next}; {c1} wants a multi-year option.",
    "{c1} introduced {c2} ({t2}), who takes over energy projects from next month.",
    "Account planning: {acct} runs {sites} sites; only one uses our systems today.",
    "Customer satisfaction survey: {c1} rated us 8/10, asked for faster spare-part delivery.",
    "Sent {c1} the invitation to our customer day in {city}.",
)
