"""Per-run settings of the rule_author graph."""

from __future__ import annotations

from dataclasses import dataclass

from langchain_core.language_models import BaseChatModel

from rules.catalog import Catalog


@dataclass(kw_only=True)
class Context:
    """Which paths to use, and the model for the fallback (None: the gateway's default, constrained to Rule)."""

    chat: BaseChatModel | None = None
    use_grammar: bool = True
    use_model: bool = True
    few_shot: bool = True
    repair_attempts: int = 2
    catalog: Catalog | None = None
