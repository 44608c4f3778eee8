"""The LLM gateway: engines (llama.cpp embedded, vLLM), model registry, constrained output, A/B router.

Import the submodules you need; nothing heavy (llama_cpp, torch, vllm) loads at package import.
"""
