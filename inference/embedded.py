"""What ``crmind serve`` calls: the engine at ``llm_base_url``, or the embedded llama.cpp started here."""

from __future__ import annotations

from config.settings import Settings
from inference.config import serving_config
from inference.engine_process import EngineHandle, reap_orphan, served_models
from inference.errors import EngineStartError


def ensure_engine(settings: Settings | None = None) -> EngineHandle:
    """A handle with ``.base_url`` and ``.stop()``: external if configured, else embedded llama.cpp.

    An external engine must answer ``/v1/models``; the embedded one is reused if already healthy on the
    port, refused with a clear error if the port holds something else, and started otherwise.
    """
    cfg = serving_config(settings)
    if cfg.base_url:
        models = served_models(cfg.base_url, api_key=cfg.api_key, timeout_s=5.0)
        if models is None:
            raise EngineStartError(f"The engine at {cfg.base_url} does not answer /models; is it running?")
        return EngineHandle(engine=cfg.engine, base_url=cfg.base_url, models=models, owned=False)
    from inference.llamacpp import start_llamacpp

    # An engine left running by a crmind that was killed is replaced, not reused: it would outlive us too.
    reap_orphan(cfg.engine_dir / f"llamacpp-{cfg.port}.pid")
    return start_llamacpp(cfg=cfg)
