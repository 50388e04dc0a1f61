"""The launch form of a workflow whose config takes lists: a tag per item, each item checked
against the schema as it is typed, and markdown descriptions rendered as such.

Each test ends by asserting the browser console logged no error (see ``conftest.browser``).
"""

from __future__ import annotations

from typing import Any

import pytest
import requests
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys

from tests.browser.helpers import duplicate_ids, text_of, text_when, wait_for
from tests.browser.test_dashboard import run_state

pytestmark = pytest.mark.browser


def tag_input(d: Any, name: str) -> Any:
    return wait_for(
        d, lambda d: d.find_elements(By.CSS_SELECTOR, f'input[id*=\'"name":"{name}"\']'), 20
    )[0]


def field_box(d: Any, name: str) -> Any:
    """The field's whole wrapper: label, description, tags and error message."""
    return tag_input(d, name).find_element(
        By.XPATH, "ancestor::div[contains(@class, 'mantine-InputWrapper-root')]"
    )


def tags(d: Any, name: str) -> list[str]:
    pills = field_box(d, name).find_elements(By.CSS_SELECTOR, ".mantine-Pill-label")
    return [p.text for p in pills]


def test_lists_are_typed_as_tags_and_checked_item_by_item(lists_gateway, browser):
    d = browser
    gw = lists_gateway
    d.get(gw.url + "/dashboard/launch?workflow=lists")
    wait_for(d, lambda d: "Writes each of" in text_of(d, "#launch-about"), 30)
    about = d.find_element(By.ID, "launch-about")
    assert [c.text for c in about.find_elements(By.TAG_NAME, "code")] == ["samples"]
    assert [e.text for e in about.find_elements(By.TAG_NAME, "em")] == ["Lists"]
    assert "s1" in [c.text for c in field_box(d, "samples").find_elements(By.TAG_NAME, "code")]
    assert tags(d, "samples") == ["a"]  # the schema's default
    assert duplicate_ids(d) == []

    samples = tag_input(d, "samples")
    samples.send_keys("b", Keys.ENTER)
    samples.send_keys("Bad Name", Keys.ENTER)
    wait_for(d, lambda d: tags(d, "samples") == ["a", "b", "Bad Name"], 10)
    wait_for(d, lambda d: "item 3: does not match" in field_box(d, "samples").text, 10)
    samples.send_keys(Keys.BACKSPACE)  # an empty tag input's Backspace removes the last tag
    wait_for(d, lambda d: tags(d, "samples") == ["a", "b"], 10)
    wait_for(d, lambda d: "does not match" not in field_box(d, "samples").text, 10)

    lanes = tag_input(d, "lanes")
    lanes.send_keys("2", Keys.ENTER)
    lanes.send_keys("x", Keys.ENTER)
    wait_for(d, lambda d: "'x' is not a whole number" in field_box(d, "lanes").text, 10)
    lanes.send_keys(Keys.BACKSPACE)
    lanes.send_keys("0", Keys.ENTER)
    wait_for(d, lambda d: "item 2: must be at least 1" in field_box(d, "lanes").text, 10)
    d.find_element(By.ID, "launch-submit").click()
    wait_for(d, lambda d: "need fixing" in text_of(d, "#launch-error"), 10)
    lanes.send_keys(Keys.BACKSPACE)
    wait_for(d, lambda d: "must be at least" not in field_box(d, "lanes").text, 10)

    d.find_element(By.ID, "launch-submit").click()
    wait_for(d, lambda d: "/dashboard/runs/" in d.current_url, 30)
    run_id = d.current_url.rstrip("/").rsplit("/", 1)[1]
    run = requests.get(f"{gw.url}/api/v1/runs/{run_id}", timeout=30).json()
    assert run["config"] == {"samples": ["a", "b"], "lanes": [2]}
    wait_for(d, lambda d: run_state(d) == "COMPLETE", 120)
    text_when(d, "#run-progress-label", lambda t: "3 of 3 jobs done (100%)" in t)


def test_a_workflow_this_server_cannot_run_is_shown_with_why_and_not_offered(
    lists_gateway, browser
):
    d = browser
    gw = lists_gateway
    d.get(gw.url + "/dashboard/launch")
    # The one runnable workflow is chosen; the other is listed with its reason.
    wait_for(d, lambda d: "Writes each of" in text_of(d, "#launch-about"), 30)
    assert "needs-tool needs surely-not-installed-xyz, not installed on this server" in text_of(
        d, "#launch-unavailable"
    )
    d.find_element(By.ID, "launch-workflow").click()
    option = wait_for(
        d,
        lambda d: [
            o for o in d.find_elements(By.CSS_SELECTOR, "[role=option]") if "needs-tool" in o.text
        ],
        10,
    )[0]
    assert option.text == "needs-tool (unavailable here)"
    assert option.get_attribute("data-combobox-disabled") == "true"
    d.find_element(By.ID, "launch-workflow").send_keys(Keys.ESCAPE)
    # A link naming it shows why, and the form cannot be sent.
    d.get(gw.url + "/dashboard/launch?workflow=needs-tool")
    wait_for(d, lambda d: "Unavailable here" in text_of(d, "#launch-about"), 30)
    assert "not installed on this server" in text_of(d, "#launch-about")
    assert not d.find_element(By.ID, "launch-submit").is_enabled()
