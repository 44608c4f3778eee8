"""Schemathesis against our own OpenAPI document, with every role's token: zero failures allowed."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.specs.openapi.checks import positive_data_acceptance

pytestmark = [pytest.mark.integration, pytest.mark.slow]
TOKENS = {"rep": "tok-a-rep", "manager": "tok-a-manager", "support": "tok-a-support", "admin": "tok-admin"}


def _app():  # type: ignore[no-untyped-def]
    from serving.api.app import create_app

    return create_app()




def _schema_for(token: str) -> schemathesis.schemas.BaseSchema:
    """One schema per role, with the role's token applied through schemathesis' own auth hook, so its
    negative tests (e.g. a request without credentials) know what was sent."""
    schema = schemathesis.openapi.from_asgi("/openapi.json", _app())

    @schema.auth(refresh_interval=None)
    class _Bearer:
        def get(self, case: schemathesis.Case, ctx: object) -> str:
            return token

        def set(self, case: schemathesis.Case, data: str, ctx: object) -> None:
            case.headers = {**(case.headers or {}), "Authorization": f"Bearer {data}"}

    return schema


@pytest.fixture(scope="module", autouse=True)
def fuzz_db(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    from config.db import get_engine, make_engine
    from config.settings import get_settings
    from crm.schema import migrate
    from tests.world import build_world

    folder = tmp_path_factory.mktemp("fuzz")  # pytest removes it, unlike a bare mkdtemp
    path = folder / "crm.db"
    with pytest.MonkeyPatch.context() as mp:  # restores the environment however the module ends
        mp.setenv("CRMIND_DATABASE_URL", f"sqlite:///{path}")
        mp.setenv("CRMIND_DATA_DIR", str(folder))
        get_settings.cache_clear()
        get_engine.cache_clear()
        engine = make_engine(f"sqlite:///{path}")
        migrate(engine)
        build_world(engine)
        yield
        engine.dispose()
    get_settings.cache_clear()
    get_engine.cache_clear()


def _make_test(role: str):  # type: ignore[no-untyped-def]
    schema = _schema_for(TOKENS[role])

    @schema.parametrize()
    # The CI gate is derandomized (the same examples every run); CRMIND_FUZZ_RANDOM=1 explores new ones
    # (`make fuzz`), and what it finds becomes a fixed regression test.
    @settings(max_examples=int(os.environ.get("CRMIND_FUZZ_EXAMPLES", "15")), deadline=None,
              derandomize=not os.environ.get("CRMIND_FUZZ_RANDOM"), suppress_health_check=list(HealthCheck))
    def test(case: schemathesis.Case) -> None:
        # positive_data_acceptance is left out: opaque cursors and field values whose type depends on
        # another field (proposal changes) can't be described in JSON Schema, and a 422 for them is right.
        case.call_and_validate(excluded_checks=[positive_data_acceptance])

    return test


test_api_as_rep = _make_test("rep")
test_api_as_manager = _make_test("manager")
test_api_as_support = _make_test("support")
test_api_as_admin = _make_test("admin")
