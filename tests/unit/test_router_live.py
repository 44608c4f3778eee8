"""Live conversations follow the registry's champion and challenger, among the models the engine serves."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import Engine

from config.db import transaction
from inference import router
from inference.registry import promote, register, set_challenger


@pytest.fixture
def adapter(tmp_path: Path, sqlite_engine: Engine) -> str:
    path = tmp_path / "a.gguf"
    path.write_bytes(b"GGUF")
    with transaction() as session:
        register(session, name="smollm2-crm", base="smollm2", actor="test", gguf_lora_path=path)
        set_challenger(session, name="smollm2-crm", share=0.5, actor="test")
    return "smollm2-crm"


def test_the_challenger_gets_its_share_once_the_engine_serves_it(adapter: str, monkeypatch: pytest.MonkeyPatch
                                                                 ) -> None:
    monkeypatch.setattr(router, "_served", lambda *_: ["smollm2", adapter])
    config = router.live_config("smollm2")
    assert (config.champion, config.challenger, config.share) == ("smollm2", adapter, 0.5)
    variants = {router.assign(config, f"thread-{i}").variant for i in range(40)}
    assert variants == {"champion", "challenger"}


def test_a_model_the_engine_does_not_serve_yet_gets_no_traffic(adapter: str, monkeypatch: pytest.MonkeyPatch
                                                                ) -> None:
    monkeypatch.setattr(router, "_served", lambda *_: ["smollm2"])
    assert router.live_config("smollm2").challenger is None
    with transaction() as session:
        promote(session, base="smollm2", actor="test")
    # A promoted adapter serves from the engine's next start; until then the base keeps answering.
    assert router.live_config("smollm2").champion == "smollm2"
    monkeypatch.setattr(router, "_served", lambda *_: ["smollm2", adapter])
    assert router.live_config("smollm2").champion == adapter
