"""Prompts are files: ``prompts/<name>.yaml`` loaded into a strict model, versioned by their content hash."""

from __future__ import annotations

import hashlib
import string
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError, model_validator

from config.errors import CrmindError

PROMPT_DIR = Path(__file__).resolve().parent


class PromptError(CrmindError):
    """A prompt file is missing or malformed, or a render lacks a variable (a programming error: 500)."""

    status = 500


class Prompt(BaseModel):
    """One prompt file. ``ref`` (``name@version``) is what the ledger stores."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    description: str
    variables: list[str] = []
    template: str
    version: str = ""

    @model_validator(mode="after")
    def _variables_match_template(self) -> Prompt:
        used = {f for _, f, _, _ in string.Formatter().parse(self.template) if f}
        if used != set(self.variables):
            raise ValueError(f"template uses {sorted(used)} but the file declares {sorted(self.variables)}")
        return self

    @property
    def ref(self) -> str:
        """``name@version``, the form the ledger records."""
        return f"{self.name}@{self.version}"

    def render(self, **values: Any) -> str:
        """The template with every declared variable filled; a missing or unknown one is an error."""
        missing = sorted(set(self.variables) - set(values))
        extra = sorted(set(values) - set(self.variables))
        if missing or extra:
            raise PromptError(f"prompt {self.name}: missing variables {missing}, unknown variables {extra}")
        return self.template.format(**values)


@lru_cache(maxsize=64)
def load_prompt(name: str) -> Prompt:
    """Load ``prompts/<name>.yaml``; its version is the first 12 hex digits of the file's SHA-256."""
    path = PROMPT_DIR / f"{name}.yaml"
    if not path.is_file():
        raise PromptError(f"no prompt file {path.name} in {PROMPT_DIR}")
    raw = path.read_text(encoding="utf-8")
    try:
        data = yaml.safe_load(raw)
        prompt = Prompt(**data, version=hashlib.sha256(raw.encode()).hexdigest()[:12])
    except (yaml.YAMLError, TypeError, ValidationError) as exc:
        raise PromptError(f"prompt file {path.name} is malformed: {exc}") from None
    if prompt.name != name:
        raise PromptError(f"prompt file {path.name} names itself '{prompt.name}'")
    return prompt
