"""Browser-test fixtures: a real gateway (standalone: gateway + runner + consumer in one process,
in-process bus, SQLite) and headless Chromium whose console must stay free of errors."""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Iterator

import pytest

from snakedeck.settings import Settings
from tests.browser.helpers import REPO, chrome_available, console_errors, start_chrome
from tests.support.live_clients import GatewayProcess
from tests.support.services import unavailable

pytestmark = pytest.mark.browser


def _settings(tmp_path_factory: pytest.TempPathFactory, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "data_dir": tmp_path_factory.mktemp("sd-browser"),
        "workflows_dir": REPO / "workflows",
        "namespace": f"sdbrowser-{uuid.uuid4().hex[:8]}",
        "max_runs": 4,
        "cores": 4,
        "cancel_grace": 3.0,
    }
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayProcess]:
    with GatewayProcess(_settings(tmp_path_factory), standalone=True) as gw:
        yield gw


@pytest.fixture(scope="module")
def token_gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayProcess]:
    settings = _settings(tmp_path_factory, api_tokens=("browser-s3cret",))
    with GatewayProcess(settings, standalone=True) as gw:
        yield gw


@pytest.fixture
def browser() -> Iterator[object]:
    """Headless Chromium; the test fails if the console logged an error along the way."""
    if not chrome_available():
        unavailable("chromium and chromedriver")
    driver, profile = start_chrome()
    try:
        yield driver
        errors = console_errors(driver)
        assert not errors, f"browser console errors: {errors}"
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)
