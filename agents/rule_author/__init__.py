"""The rule_author graph: a manager's rule text -> a typed ``rules.Rule``, or questions back."""

from agents.rule_author.graph import compile_rule, graph

__all__ = ["compile_rule", "graph"]
