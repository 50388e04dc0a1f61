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
from tests.support.network_lock import steady_network
from tests.support.services import unavailable

pytestmark = pytest.mark.browser


def gateway_settings(tmp_path_factory: pytest.TempPathFactory, **overrides: object) -> Settings:
    """A test gateway's settings: its own data dir and namespace, the repo's workflows."""
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
    with GatewayProcess(gateway_settings(tmp_path_factory), standalone=True) as gw:
        yield gw


BROWSER_TOKEN = "browser-s3cret"
"""The ``submit`` token named ``ana`` (from a token file) of the token gateways."""
ADMIN_TOKEN = "browser-admin"


def _token_settings(tmp_path_factory: pytest.TempPathFactory, **overrides: object) -> Settings:
    from snakedeck.auth import token_hash

    token_file = tmp_path_factory.mktemp("sd-tokens") / "tokens"
    token_file.write_text(f"ana:submit:{token_hash(BROWSER_TOKEN)}\n")
    return gateway_settings(
        tmp_path_factory, api_tokens=(ADMIN_TOKEN,), token_file=token_file, **overrides
    )


@pytest.fixture(scope="module")
def token_gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayProcess]:
    """Tokens configured, reads public: anyone may watch, writes need the stored token."""
    with GatewayProcess(_token_settings(tmp_path_factory, public_read=True), standalone=True) as gw:
        yield gw


@pytest.fixture(scope="module")
def private_gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayProcess]:
    """Tokens configured, reads private: the dashboard asks the browser to sign in."""
    with GatewayProcess(_token_settings(tmp_path_factory), standalone=True) as gw:
        yield gw


FILES_MAX_UPLOAD = 300_000
"""The upload limit of ``files_gateway``: small, so a file over it is cheap to make."""


@pytest.fixture(scope="module")
def files_gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayProcess]:
    """A gateway with a small upload limit that may fetch URLs from this machine."""
    settings = gateway_settings(
        tmp_path_factory, max_upload=FILES_MAX_UPLOAD, fetch_allow_private=True
    )
    with GatewayProcess(settings, standalone=True) as gw:
        yield gw


LISTS_WORKFLOW = """\
name: lists
version: "1.0"
description: >-
  Writes each of `samples` to a file of its own. *Lists* are typed one value per tag.
config_schema:
  type: object
  additionalProperties: false
  properties:
    samples:
      type: array
      items: {type: string, pattern: "^[a-z0-9]+$"}
      minItems: 1
      default: [a]
      description: Sample names in lower case, e.g. `s1`.
    lanes:
      type: array
      items: {type: integer, minimum: 1}
      description: Lane numbers, each at least `1`.
"""
LISTS_SNAKEFILE = """\
rule all:
    input: expand("out/{s}.txt", s=config.get("samples", ["a"]))

rule one:
    output: "out/{s}.txt"
    shell: "echo {wildcards.s} > {output}"
"""


NEEDS_TOOL_WORKFLOW = """\
name: needs-tool
version: "1.0"
description: Needs a program no machine has.
requires: [surely-not-installed-xyz]
"""


@pytest.fixture(scope="module")
def lists_gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayProcess]:
    """A gateway whose one runnable workflow takes lists in its config (the demo takes none),
    beside one it cannot run (a program it requires is missing)."""
    workflows = tmp_path_factory.mktemp("sd-workflows")
    for name, definition, snakefile in (
        ("lists", LISTS_WORKFLOW, LISTS_SNAKEFILE),
        ("needs-tool", NEEDS_TOOL_WORKFLOW, "rule all:\n    shell: 'true'\n"),
    ):
        (workflows / name).mkdir()
        (workflows / name / "workflow.yaml").write_text(definition)
        (workflows / name / "Snakefile").write_text(snakefile)
    with GatewayProcess(
        gateway_settings(tmp_path_factory, workflows_dir=workflows), standalone=True
    ) as gw:
        yield gw


@pytest.fixture
def browser() -> Iterator[object]:
    """Headless Chromium; the test fails if the console logged an error along the way."""
    if not chrome_available():
        unavailable("chromium and chromedriver")
    with steady_network():  # the many-hosts tests' network changes abort Chromium's loads
        driver, profile = start_chrome()
        try:
            yield driver
            errors = console_errors(driver)
            assert not errors, f"browser console errors: {errors}"
        finally:
            driver.quit()
            shutil.rmtree(profile, ignore_errors=True)
