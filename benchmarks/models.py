"""Model benchmark: the same CRM tool-call suite on each base, through the real engine and the gateway.

    .venv/bin/python -m benchmarks.models                      # smollm2, qwen2.5-0.5b, qwen2.5-1.5b
    .venv/bin/python -m benchmarks.models --models smollm2,qwen2.5-0.5b --threads 2 --verbose

Each model runs alone in its own llama.cpp server (``--threads`` threads), driven exactly as the assistant
drives it: ``chat_model(...).bind_tools(TOOLS)`` streaming, the system prompt and the tools a fixed prefix.
Per model:
  - tool accuracy per language on ``benchmarks.crm_tool_cases`` (right tool; right tool with right arguments)
    and text answers where no tool fits;
  - seconds per turn and time to first token with a cold prefix (a nonce starts the system prompt, so
    nothing is reused) and with the warm prefix every later turn shares (llama.cpp reuses its KV cache);
  - prompt tokens/s (cold), decode tokens/s of text answers with the tool grammar on and without tools;
  - load time and server RSS.
SmolLM2 is the baseline: every other column shows its ratio to SmolLM2's number.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import time
import uuid
from pathlib import Path
from typing import Any

import psutil
from langchain_core.messages import HumanMessage, SystemMessage

from benchmarks.crm_tool_cases import CASES, TEXT_PROMPTS, TOOLS, Case, arg_matches
from prompts.loader import load_prompt

BASELINE = "smollm2"


@dataclasses.dataclass
class Turn:
    """One measured call: what came back and how long it took (from the gateway's ledger row)."""

    case: Case | None
    tool: str | None
    args: dict[str, Any]
    text: str
    seconds: float
    ttft_s: float | None
    tokens_in: int
    tokens_out: int

    @property
    def right_tool(self) -> bool:
        return self.case is not None and self.tool == self.case.tool

    @property
    def right_args(self) -> bool:
        return self.right_tool and self.case is not None and all(
            k in self.args and arg_matches(v, self.args[k]) for k, v in self.case.args.items())

    @property
    def decode_tps(self) -> float:
        decode_s = self.seconds - (self.ttft_s or 0.0)
        return (self.tokens_out - 1) / decode_s if self.tokens_out > 1 and decode_s > 0 else 0.0


@dataclasses.dataclass
class Result:
    model: str
    load_s: float
    rss_mb: float
    cold: list[Turn]
    warm: list[Turn]
    text_tools: list[Turn]
    text_plain: list[Turn]

    def accuracy(self, lang: str, *, args: bool) -> tuple[int, int]:
        turns = [t for t in self.warm if t.case and t.case.tool and t.case.lang == lang]
        return sum(t.right_args if args else t.right_tool for t in turns), len(turns)

    def no_tool(self) -> tuple[int, int]:
        turns = [t for t in self.warm if t.case and t.case.tool is None]
        return sum(t.tool is None for t in turns), len(turns)


def rss_mb(pid: int) -> float:
    proc = psutil.Process(pid)
    return sum(p.memory_info().rss for p in [proc, *proc.children(recursive=True)]) / 2**20


def prompt_counter(base: Any, gguf: Path, system: str) -> Any:
    """Prompt tokens of a turn, as the engine renders it (llama-cpp-python's server reports no usage when
    streaming): the model's chat template (or crmind's) with the tools, tokenized by the model's vocab."""
    from langchain_core.utils.function_calling import convert_to_openai_tool
    from llama_cpp import Llama
    from llama_cpp.llama_chat_format import Jinja2ChatFormatter

    vocab = Llama(str(gguf), vocab_only=True, verbose=False)
    template_path = base.chat_template_path()
    template = template_path.read_text() if template_path else vocab.metadata["tokenizer.chat_template"]
    formatter = Jinja2ChatFormatter(template=template, eos_token="<|im_end|>", bos_token="")
    tools = [convert_to_openai_tool(t) for t in TOOLS]

    def count(text: str, with_tools: bool = True) -> int:
        messages = [{"role": "system", "content": system}, {"role": "user", "content": text}]
        prompt = formatter(messages=messages, tools=tools if with_tools else None).prompt  # type: ignore[arg-type]
        return len(vocab.tokenize(prompt.encode(), add_bos=False, special=True))

    return count


def run_turn(chat: Any, rows: list[dict[str, Any]], system: str, text: str, case: Case | None,
             tokens_in: int) -> Turn:
    """One streamed turn through the gateway; timings come from the ledger row the gateway writes."""
    started = time.perf_counter()
    chunks = list(chat.stream([SystemMessage(content=system), HumanMessage(content=text)]))
    seconds = time.perf_counter() - started
    msg = chunks[0]
    for chunk in chunks[1:]:
        msg = msg + chunk
    row = rows[-1]
    call = msg.tool_calls[0] if msg.tool_calls else None
    ttft_ms = row["output"].get("ttft_ms")
    return Turn(case=case, tool=call["name"] if call else None, args=call["args"] if call else {},
                text=str(msg.content), seconds=seconds, ttft_s=ttft_ms / 1000 if ttft_ms else None,
                tokens_in=row.get("tokens_in") or tokens_in, tokens_out=row.get("tokens_out") or 0)


def bench_model(name: str, args: argparse.Namespace) -> Result:
    from inference.bases import get_base
    from inference.config import serving_config
    from inference.engine_process import free_port
    from inference.gateway import chat_model
    from inference.llamacpp import ServedModel, start_llamacpp

    work = Path(args.work)
    cfg = dataclasses.replace(serving_config(), data_dir=work, port=free_port(), threads=args.threads,
                              ctx=args.ctx, engine="llamacpp", base_url=None, timeout_s=900.0,
                              start_timeout_s=300.0)
    base = get_base(name)
    served = ServedModel.of_base(base, data_dir=work)  # assembles a split base once, untimed
    started = time.perf_counter()
    handle = start_llamacpp([served], cfg=cfg, reuse=False)
    load_s = time.perf_counter() - started
    rows: list[dict[str, Any]] = []
    prompt = load_prompt("benchmark_crm_tools")
    system = prompt.render()
    count = prompt_counter(base, served.gguf_path, system)

    def chat(max_tokens: int) -> Any:
        return chat_model(name, cfg=cfg, prompt=prompt.ref, max_tokens=max_tokens, actor="benchmark",
                          append=lambda **row: rows.append(row))

    tools = chat(args.tool_tokens).bind_tools(TOOLS)
    try:
        # Cold prefix: a nonce first in the system prompt, so the engine reuses nothing of the last call.
        cold = [run_turn(tools, rows, f"[{uuid.uuid4().hex[:8]}] {system}", c.text, c, count(c.text))
                for c in CASES[:args.cold]]
        warm = [run_turn(tools, rows, system, c.text, c, count(c.text)) for c in CASES]
        text_tools = [run_turn(chat(args.text_tokens).bind_tools(TOOLS), rows, system, p, None, count(p))
                      for p in TEXT_PROMPTS]
        text_plain = [run_turn(chat(args.text_tokens), rows, system, p, None, count(p, False))
                      for p in TEXT_PROMPTS]
        assert handle.process is not None
        rss = rss_mb(handle.process.pid)
    finally:
        handle.stop()
    result = Result(model=name, load_s=load_s, rss_mb=rss, cold=cold, warm=warm, text_tools=text_tools,
                    text_plain=text_plain)
    if args.verbose:
        for t in warm:
            assert t.case is not None
            mark = "ok " if (t.right_args if t.case.tool else t.tool is None) else ("~  " if t.right_tool else "x  ")
            got = f"{t.tool}({json.dumps(t.args, ensure_ascii=False)})" if t.tool else f"text: {t.text[:60]!r}"
            print(f"  {mark}{t.seconds:5.1f}s [{t.case.lang}] {t.case.text[:48]:<50} -> {got}")
    return result


def med(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def table(results: list[Result]) -> list[tuple[str, ...]]:
    """Rows of metric -> value per model, with the ratio to the baseline model in brackets."""
    base = next((r for r in results if r.model == BASELINE), results[0])

    def frac(r: Result, lang: str, use_args: bool) -> str:
        right, total = r.accuracy(lang, args=use_args)
        return f"{right}/{total}"

    metrics: list[tuple[str, Any, str]] = [
        ("right tool, en", lambda r: frac(r, "en", False), ""),
        ("right tool, zh", lambda r: frac(r, "zh", False), ""),
        ("right tool + arguments, en", lambda r: frac(r, "en", True), ""),
        ("right tool + arguments, zh", lambda r: frac(r, "zh", True), ""),
        ("text when no tool fits", lambda r: "{}/{}".format(*r.no_tool()), ""),
        ("prompt tokens (system + tools + request)", lambda r: med([t.tokens_in for t in r.warm]), "{:.0f}"),
        ("s/turn, cold prefix", lambda r: med([t.seconds for t in r.cold]), "{:.2f}"),
        ("s/turn, warm prefix", lambda r: med([t.seconds for t in r.warm]), "{:.2f}"),
        ("TTFT s, cold prefix", lambda r: med([t.ttft_s or 0 for t in r.cold]), "{:.2f}"),
        ("TTFT s, warm prefix", lambda r: med([t.ttft_s or 0 for t in r.warm]), "{:.2f}"),
        ("prompt tok/s, cold", lambda r: med([t.tokens_in / t.ttft_s for t in r.cold if t.ttft_s]), "{:.0f}"),
        ("decode tok/s, text, tools bound (grammar)", lambda r: med([t.decode_tps for t in r.text_tools]),
         "{:.1f}"),
        ("decode tok/s, text, no tools", lambda r: med([t.decode_tps for t in r.text_plain]), "{:.1f}"),
        ("load s", lambda r: r.load_s, "{:.1f}"),
        ("server RSS MB", lambda r: r.rss_mb, "{:.0f}"),
    ]
    rows: list[tuple[str, ...]] = [("metric", *(r.model for r in results))]
    for label, get, fmt in metrics:
        cells = []
        for r in results:
            value = get(r)
            if not fmt:
                cells.append(str(value))
                continue
            ratio = value / get(base) if r is not base and get(base) else None
            cells.append(fmt.format(value) + (f" ({ratio:.2f}x)" if ratio is not None else ""))
        rows.append((label, *cells))
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", default="smollm2,qwen2.5-0.5b,qwen2.5-1.5b", help="bases, baseline first")
    parser.add_argument("--threads", type=int, default=2, help="engine threads")
    parser.add_argument("--ctx", type=int, default=4096, help="engine context (crmind's default)")
    parser.add_argument("--cold", type=int, default=3, help="cold-prefix turns per model")
    parser.add_argument("--tool-tokens", type=int, default=160, help="token budget of a tool turn")
    parser.add_argument("--text-tokens", type=int, default=120, help="token budget of a text answer")
    parser.add_argument("--work", default="data/bench-models", help="data dir: assembled GGUFs, engine logs")
    parser.add_argument("--json", type=Path, default=None, help="also write the per-turn results here")
    parser.add_argument("--verbose", action="store_true", help="print every turn")
    args = parser.parse_args(argv)
    results = []
    for name in args.models.split(","):
        print(f"== {name}", flush=True)
        results.append(bench_model(name, args))
    rows = table(results)
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for i, r in enumerate(rows):
        print("| " + " | ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) + " |")
        if i == 0:
            print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    if args.json is not None:
        args.json.write_text(json.dumps([dataclasses.asdict(r) for r in results], default=str, indent=1,
                                        ensure_ascii=False))
    load = psutil.getloadavg()[0]
    print(f"{len(results)} models, {len(CASES)} requests each, {args.threads} threads; load average {load:.1f}")


if __name__ == "__main__":
    main()
