"""Deterministic, bilingual demo CRM data with planted ground-truth facts for evals."""

from crm.demo.generate import DemoResult, build_demo, sizes

__all__ = ["DemoResult", "build_demo", "sizes"]
