"""``python -m inference.llamacpp_server --config_file ...``: llama-cpp-python's server plus crmind's templates.

A base without a tool-aware chat template (SmolLM2) is served with crmind's template from
``inference/templates/<name>.jinja``, registered here as the chat format ``crmind-<name>`` before the server
starts, so the engine renders tools and tool turns for every base and the gateway has one path.
"""

from __future__ import annotations

from pathlib import Path

TEMPLATES = Path(__file__).parent / "templates"
EOS = "<|im_end|>"  # every crmind template is ChatML


def chat_format_name(template: str) -> str:
    """The chat format name a served model entry gives to use ``templates/<template>.jinja``."""
    return f"crmind-{template}"


def register_templates() -> list[str]:
    """Register every ``templates/*.jinja`` as a llama-cpp-python chat format; returns their names."""
    from llama_cpp import llama_chat_format as fmt

    names = []
    for path in sorted(TEMPLATES.glob("*.jinja")):
        formatter = fmt.Jinja2ChatFormatter(template=path.read_text(), eos_token=EOS, bos_token="")
        name = chat_format_name(path.stem)
        fmt.LlamaChatCompletionHandlerRegistry().register_chat_completion_handler(
            name, formatter.to_chat_handler(), overwrite=True)
        names.append(name)
    return names


def main() -> None:
    """Register the templates, then run llama-cpp-python's own server entry point (same arguments)."""
    register_templates()
    from llama_cpp.server.__main__ import main as serve

    serve()


if __name__ == "__main__":
    main()
