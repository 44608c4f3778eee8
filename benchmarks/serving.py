"""Serving benchmark: the engines behind the gateway, against direct llama.cpp generation as the baseline.

    .venv/bin/python -m benchmarks.serving --engine llamacpp --threads 2 --tokens 64
    .venv/bin/python -m benchmarks.serving --engine vllm      # needs .venv-vllm

Per engine: decode tokens/s and time to first token (streamed, greedy), server RSS, aggregate
throughput at 1 and 4 concurrent requests, and a JSON-schema-constrained call against an
unconstrained one. For llama.cpp the same model and thread count run in-process through
``llama_cpp.Llama`` first; the ratio server/direct decode speed is the engine's overhead (target >= 0.8).
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import psutil

PROMPT = [{"role": "user", "content": "Write a paragraph on why sales teams keep notes on every call."}]
SCHEMA = {"type": "object", "properties": {"summary": {"type": "string"}, "priority": {"type": "integer"}},
          "required": ["summary", "priority"]}


@dataclasses.dataclass
class Run:
    ttft_s: float
    decode_tps: float
    tokens: int
    total_s: float


def _from_stream(chunks: Any, started: float) -> Run:
    stamps = []
    for chunk in chunks:
        choices = chunk["choices"] if isinstance(chunk, dict) else chunk.choices
        delta = choices[0]["delta"] if isinstance(chunk, dict) else choices[0].delta
        content = delta.get("content") if isinstance(delta, dict) else delta.content
        if content:
            stamps.append(time.perf_counter())
    end = time.perf_counter()
    n = len(stamps)
    # decode rate: tokens after the first over the time after the first (prompt processing excluded)
    decode = (n - 1) / (stamps[-1] - stamps[0]) if n > 1 and stamps[-1] > stamps[0] else 0.0
    return Run(ttft_s=stamps[0] - started if stamps else end - started, decode_tps=decode, tokens=n,
               total_s=end - started)


def direct_llamacpp(gguf: Path, threads: int, tokens: int, runs: int) -> tuple[list[Run], float]:
    """The llama-bench-style baseline: the chat prompt's tokens, then a bare greedy token loop in-process
    (no HTTP, no detokenising, no sampling chain beyond top-1), stopped after ``tokens`` tokens."""
    from llama_cpp import Llama
    from llama_cpp.llama_chat_format import Jinja2ChatFormatter

    rss0 = psutil.Process().memory_info().rss
    llm = Llama(model_path=str(gguf), n_threads=threads, n_threads_batch=threads, n_ctx=2048, verbose=False)
    rss = psutil.Process().memory_info().rss - rss0
    # The same prompt the server sees: the GGUF's own chat template, rendered by the same library.
    formatter = Jinja2ChatFormatter(template=llm.metadata["tokenizer.chat_template"], eos_token="<|im_end|>",
                                    bos_token="<|im_start|>", add_generation_prompt=True)
    text = formatter(messages=PROMPT).prompt  # type: ignore[arg-type]
    prompt_tokens = llm.tokenize(text.encode(), add_bos=False, special=True)
    out = []
    for _ in range(runs + 1):  # first run warms up
        started = time.perf_counter()
        stamps = []
        for _tok in llm.generate(prompt_tokens, top_k=1, temp=0.0, reset=True):
            stamps.append(time.perf_counter())
            if len(stamps) >= tokens:
                break
        n = len(stamps)
        decode = (n - 1) / (stamps[-1] - stamps[0]) if n > 1 else 0.0
        out.append(Run(ttft_s=stamps[0] - started, decode_tps=decode, tokens=n, total_s=stamps[-1] - started))
    llm.close()
    return out[1:], rss / 2**20


def server_runs(
    base_url: str, model: str, tokens: int, runs: int, extra: dict[str, Any] | None = None
) -> list[Run]:
    import openai

    client = openai.OpenAI(base_url=base_url, api_key="not-needed", timeout=600)
    out = []
    for _ in range(runs + 1):
        started = time.perf_counter()
        stream = client.chat.completions.create(model=model, messages=PROMPT, max_tokens=tokens,  # type: ignore[arg-type]
                                                temperature=0.0, stream=True, extra_body=extra or {})
        out.append(_from_stream(stream, started))
    return out[1:]


def concurrent_throughput(base_url: str, model: str, tokens: int, n: int) -> float:
    import openai

    client = openai.OpenAI(base_url=base_url, api_key="not-needed", timeout=600)

    def one(_: int) -> int:
        resp = client.chat.completions.create(model=model, messages=PROMPT, max_tokens=tokens,  # type: ignore[arg-type]
                                              temperature=0.0, extra_body={"max_tokens": tokens})
        return resp.usage.completion_tokens if resp.usage else 0

    started = time.perf_counter()
    with ThreadPoolExecutor(n) as pool:
        total = sum(pool.map(one, range(n)))
    return total / (time.perf_counter() - started)


def constrained_latency(base_url: str, model: str, engine: str, runs: int) -> tuple[float, float]:
    import openai

    from inference.gateway import constraint_body

    client = openai.OpenAI(base_url=base_url, api_key="not-needed", timeout=600)
    msgs = [{"role": "user", "content": "Summarise: Acme wants a quote by Friday. Give JSON."}]

    def timed(extra: dict[str, Any]) -> float:
        times = []
        for _ in range(runs):
            started = time.perf_counter()
            resp = client.chat.completions.create(model=model, messages=msgs, max_tokens=48,  # type: ignore[arg-type]
                                                  temperature=0.0, extra_body={"max_tokens": 48, **extra})
            n = resp.usage.completion_tokens if resp.usage else 1
            times.append((time.perf_counter() - started) / max(n, 1))
        return statistics.median(times) * 1000

    return timed({}), timed(constraint_body(engine, json_schema=SCHEMA))  # type: ignore[arg-type]


def rss_mb(pid: int) -> float:
    proc = psutil.Process(pid)
    return sum(p.memory_info().rss for p in [proc, *proc.children(recursive=True)]) / 2**20


def med(runs: list[Run], attr: str) -> float:
    return statistics.median(getattr(r, attr) for r in runs)


def bench_engine(engine: str, args: argparse.Namespace, rows: list[tuple[str, ...]]) -> None:
    from inference.bases import get_base
    from inference.config import serving_config
    from inference.engine_process import free_port

    gguf = get_base("smollm2").gguf_path()
    cfg = dataclasses.replace(serving_config(), threads=args.threads, ctx=2048, port=free_port(),
                              data_dir=Path(args.work), engine=engine)  # type: ignore[arg-type]
    if engine == "llamacpp":
        from inference.llamacpp import ServedModel, start_llamacpp

        direct, direct_rss = direct_llamacpp(gguf, args.threads, args.tokens, args.runs)
        rows.append(("llama.cpp direct (Llama)", f"{med(direct, 'decode_tps'):.1f}",
                     f"{med(direct, 'ttft_s') * 1000:.0f}", f"{direct_rss:.0f}", "-", "-", "-"))
        handle = start_llamacpp([ServedModel(name="smollm2", gguf_path=gguf)], cfg=cfg, reuse=False)
    else:
        from finetune.hf_base import build_hf_base
        from inference.vllm import start_vllm

        cfg = dataclasses.replace(cfg, vllm_python=args.vllm_python, vllm_gpu_memory_utilization=0.3,
                                  vllm_max_model_len=2048)
        hf = build_hf_base("smollm2", Path(args.work) / "smollm2-hf")
        t0 = time.perf_counter()
        handle = start_vllm(model_dir=hf, served_name="smollm2", cfg=cfg)
        print(f"vLLM started in {time.perf_counter() - t0:.0f} s")
        direct = []
    try:
        served = server_runs(handle.base_url, "smollm2", args.tokens, args.runs, {"max_tokens": args.tokens})
        assert handle.process is not None
        rss = rss_mb(handle.process.pid)
        tput1 = concurrent_throughput(handle.base_url, "smollm2", args.tokens, 1)
        tput4 = concurrent_throughput(handle.base_url, "smollm2", args.tokens, 4)
        free, constrained = constrained_latency(handle.base_url, "smollm2", engine, args.runs)
        ratio = f"{med(served, 'decode_tps') / med(direct, 'decode_tps'):.2f}" if direct else "-"
        rows.append((f"{engine} server", f"{med(served, 'decode_tps'):.1f}",
                     f"{med(served, 'ttft_s') * 1000:.0f}",
                     f"{rss:.0f}", f"{tput1:.1f} / {tput4:.1f}", f"{free:.1f} / {constrained:.1f}", ratio))
    finally:
        handle.stop()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--engine", choices=["llamacpp", "vllm", "both"], default="llamacpp")
    parser.add_argument("--threads", type=int, default=2, help="llama.cpp threads (direct and server)")
    parser.add_argument("--tokens", type=int, default=64, help="tokens generated per request")
    parser.add_argument("--runs", type=int, default=3, help="measured runs per number (after one warm-up)")
    parser.add_argument("--work", default="data/bench-serving", help="scratch folder: configs, logs, HF copy")
    parser.add_argument("--vllm-python", default=".venv-vllm/bin/python")
    args = parser.parse_args(argv)
    rows: list[tuple[str, ...]] = []
    for engine in (["llamacpp", "vllm"] if args.engine == "both" else [args.engine]):
        bench_engine(engine, args, rows)
    head = ("engine", "decode tok/s", "TTFT ms", "RSS MB", "agg tok/s @1 / @4", "ms/token free / JSON",
            "server/direct")
    widths = [max(len(r[i]) for r in [head, *rows]) for i in range(len(head))]
    for r in [head, *rows]:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)))
    print(f"SmolLM2-135M Q4_1, {args.threads} threads, {args.tokens} tokens, greedy, median of {args.runs}")


if __name__ == "__main__":
    main()
