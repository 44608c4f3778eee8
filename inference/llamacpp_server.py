"""``python -m inference.llamacpp_server --config_file ...``: llama-cpp-python's server, with two additions.

1. Chat templates: a base without a tool-aware template (SmolLM2) is served with crmind's template from
   ``inference/templates/<name>.jinja``, registered here as the chat format ``crmind-<name>`` before the
   server starts, so the engine renders tools and tool turns for every base and the gateway has one path.
2. Tool-call arguments reach the template as objects (:func:`with_argument_objects`).
3. Grammar last: llama-cpp-python applies a request's grammar to every token of the vocabulary at every
   step, which costs about as much as decoding itself on 2 cores (152k tokens for Qwen; measured in
   benchmarks/models.py). As llama.cpp's own sampler does, we pick the token without the grammar first and
   only constrain the whole vocabulary when the grammar refuses it; greedy picks are the same tokens.
   ``CRMIND_LLAMACPP_GRAMMAR_FIRST=1`` restores llama-cpp-python's order (to measure the difference).
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import math
import os
from pathlib import Path
from typing import Any

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


class GrammarLastSampler:
    """llama-cpp-python's sampler chain (penalties, then greedy or dist) with the grammar checked last.

    Each step: choose a token from the logits without the grammar; if the grammar accepts it, take it; else
    mask the whole vocabulary with the grammar and choose again. Both samplers then accept the token.
    """

    def __init__(self, chain: Any, vocab: Any, grammar: Any, n_vocab: int) -> None:
        import llama_cpp
        import numpy as np

        self.chain, self.n_vocab = chain, n_vocab
        self.grammar = llama_cpp.llama_sampler_init_grammar(vocab, grammar._grammar.encode(),
                                                             grammar._root.encode())
        if not self.grammar:
            raise ValueError("llama.cpp refused the grammar")
        self.cells = (llama_cpp.llama_token_data * n_vocab)()
        self.view = np.frombuffer(self.cells, dtype=np.dtype([("id", "<i4"), ("logit", "<f4"), ("p", "<f4")]))
        self.view["id"] = np.arange(n_vocab, dtype=np.int32)
        self.one = (llama_cpp.llama_token_data * 1)()

    def _choose(self, logits: Any, *, constrained: bool) -> int:
        import llama_cpp

        self.view["logit"], self.view["p"] = logits, 0.0
        cur = llama_cpp.llama_token_data_array(self.cells, self.n_vocab, -1, False)
        if constrained:
            llama_cpp.llama_sampler_apply(self.grammar, ctypes.byref(cur))
        llama_cpp.llama_sampler_apply(self.chain.sampler, ctypes.byref(cur))
        return int(cur.data[cur.selected].id)

    def sample(self, ctx: Any, idx: int = -1) -> int:
        """The next token, as ``llama_sampler_sample`` would choose it with the grammar in the chain."""
        import llama_cpp
        import numpy as np

        logits = np.ctypeslib.as_array(llama_cpp.llama_get_logits_ith(ctx.ctx, idx), shape=(self.n_vocab,))
        token = self._choose(logits, constrained=False)
        self.one[0] = llama_cpp.llama_token_data(token, 0.0, 0.0)
        llama_cpp.llama_sampler_apply(self.grammar, ctypes.byref(llama_cpp.llama_token_data_array(
            self.one, 1, -1, False)))
        if math.isinf(self.one[0].logit):
            token = self._choose(logits, constrained=True)
        llama_cpp.llama_sampler_accept(self.grammar, token)
        llama_cpp.llama_sampler_accept(self.chain.sampler, token)
        return token

    def close(self) -> None:
        """Free the grammar sampler (the chain frees itself)."""
        import llama_cpp

        if self.grammar:
            llama_cpp.llama_sampler_free(self.grammar)
            self.grammar = None
        self.chain.close()

    def __del__(self) -> None:
        with contextlib.suppress(Exception):  # at interpreter exit llama.cpp's functions may be gone
            self.close()


def check_grammar_last() -> None:
    """Make every ``Llama`` with a grammar sample through :class:`GrammarLastSampler`."""
    from llama_cpp import llama

    original = llama.Llama._init_sampler

    def init_sampler(self: Any, *args: Any, grammar: Any = None, **kwargs: Any) -> Any:
        chain = original(self, *args, grammar=None, **kwargs)
        if grammar is None:
            return chain
        return GrammarLastSampler(chain, self._model.vocab, grammar, self._n_vocab)

    llama.Llama._init_sampler = init_sampler  # type: ignore[method-assign]


def with_argument_objects(messages: list[Any]) -> list[Any]:
    """``messages`` with each tool call's arguments as an object, not the JSON string the OpenAI API sends.

    Templates written for transformers (Qwen's among them) render ``tool_call.arguments | tojson``; given the
    API's string they show the model its own earlier calls as a quoted string, which it then imitates in
    text instead of answering (seen with Qwen2.5-1.5B after a tool result).
    """
    out = []
    for message in messages:
        calls = message.get("tool_calls") if isinstance(message, dict) else None
        if calls:
            fixed = []
            for call in calls:
                fn = dict(call.get("function") or {})
                if isinstance(fn.get("arguments"), str):
                    with contextlib.suppress(ValueError):
                        fn["arguments"] = json.loads(fn["arguments"])
                fixed.append({**call, "function": fn})
            message = {**message, "tool_calls": fixed}
        out.append(message)
    return out


def render_arguments_as_objects() -> None:
    """Make every Jinja chat formatter (the GGUF's own template included) see arguments as objects."""
    from llama_cpp import llama_chat_format as fmt

    original = fmt.Jinja2ChatFormatter.__call__

    def call(self: Any, *, messages: list[Any], **kwargs: Any) -> Any:
        return original(self, messages=with_argument_objects(messages), **kwargs)

    fmt.Jinja2ChatFormatter.__call__ = call  # type: ignore[method-assign]


def main() -> None:
    """Register the templates (and the grammar-last sampler), then run llama-cpp-python's server."""
    render_arguments_as_objects()
    register_templates()
    if os.environ.get("CRMIND_LLAMACPP_GRAMMAR_FIRST") != "1":
        check_grammar_last()
    from llama_cpp.server.__main__ import main as serve

    serve()


if __name__ == "__main__":
    main()
