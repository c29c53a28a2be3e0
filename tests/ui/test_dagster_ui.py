"""The Dagster UI, driven in headless Chromium: what a data engineer does with onetrack.

Starts ``dagster dev -w workspace.yaml`` on a free port of 127.0.0.1 with a temporary
``DAGSTER_HOME`` and landing/warehouse/settlement roots (one small day of generated landing data
with faults), then, in Debian's Chromium through selenium (no browser is downloaded):

1. the asset catalog lists every asset of ``pipelines.definitions.defs``, and the global lineage
   graph, with all groups expanded, shows each of them in its group;
2. "Materialize all…" in the lineage page, partition ``2026-11-01`` typed into the partition
   selection, "Launch 1 run"; the run appears in the Runs page and succeeds (a day of every
   asset and check takes ~3 minutes on a 2-core machine);
3. the Checks tab of ``gold/kpi_daily`` shows each of its checks passed.

Screenshots go to ``$ONETRACK_SCREENSHOT_DIR`` (default ``reports/screenshots/ui``, ignored by
git). Without Chromium and chromedriver the test is skipped, except in CI (``CI`` set), where it
fails: ``.ci/setup.sh`` installs them.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections import Counter
from pathlib import Path

import pytest

pytestmark = [pytest.mark.slow, pytest.mark.browser]

REPO = Path(__file__).resolve().parents[2]
DAY = "2026-11-01"
CHECKED_ASSET = "gold/kpi_daily"
RUN_TIMEOUT_S = 20 * 60
UI_TIMEOUT_S = 60

CHROMIUM = next((p for p in map(shutil.which, ("chromium", "chromium-browser", "google-chrome")) if p), None)
CHROMEDRIVER = shutil.which("chromedriver")


def _require_browser() -> None:
    missing = [name for name, path in (("chromium", CHROMIUM), ("chromedriver", CHROMEDRIVER)) if not path]
    try:
        import selenium  # noqa: F401
    except ImportError:
        missing.append("selenium (pip, dev extra)")
    if not missing:
        return
    reason = (
        f"{', '.join(missing)} not installed (bash .ci/setup.sh installs Debian's chromium + chromium-driver)"
    )
    if os.environ.get("CI"):
        pytest.fail(f"CI is set: the browser test must run, but {reason}")
    pytest.skip(reason)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _asset_keys() -> list[str]:
    from pipelines.definitions import defs

    return sorted(k.to_user_string() for k in defs.resolve_asset_graph().get_all_asset_keys())


def _check_names(asset_key: str) -> list[str]:
    from pipelines.definitions import defs

    keys = defs.resolve_asset_graph().asset_check_keys
    return sorted(k.name for k in keys if k.asset_key.to_user_string() == asset_key)


@pytest.fixture(scope="module")
def shots(tmp_path_factory) -> Path:
    root = Path(os.environ.get("ONETRACK_SCREENSHOT_DIR") or REPO / "reports" / "screenshots" / "ui")
    root.mkdir(parents=True, exist_ok=True)
    for old in root.glob("*.png"):
        old.unlink()
    return root


@pytest.fixture(scope="module")
def dagster_ui(tmp_path_factory):
    """``dagster dev`` on a free port: ``{"url", "root", "log"}``; stopped (its process group) after."""
    _require_browser()
    from pipelines.generate import generate_landing

    root = tmp_path_factory.mktemp("ui")
    day = dt.date.fromisoformat(DAY)
    generate_landing(root / "landing", day, day, orders_per_day=60, seed=3, faults=True)
    home = root / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    env = {
        **os.environ,
        "DAGSTER_HOME": str(home),
        "ONETRACK_LANDING_DIR": str(root / "landing"),
        "ONETRACK_WAREHOUSE_DIR": str(root / "warehouse"),
        "ONETRACK_SETTLEMENT_DIR": str(root / "settlements"),
        "ONETRACK_SPARK_DRIVER_MEMORY": "2g",
        "ONETRACK_SPARK_SHUFFLE_PARTITIONS": "2",
        # A 60-order day with every fault injected quarantines more ad_spend records than the
        # default allowance (25) and rate (10%), so ad_spend_quarantine_rate would (rightly) block
        # the run; this test is about the UI, so let the small faulty day through.
        "ONETRACK_QUARANTINE_ALLOWANCE": "1000",
        "SPARK_LOCAL_IP": "127.0.0.1",
        "DAGSTER_DISABLE_TELEMETRY": "1",
        "GX_ANALYTICS_ENABLED": "false",
    }
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    log = root / "dagster_dev.log"
    dagster = Path(sys.executable).with_name("dagster")
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [str(dagster), "dev", "-w", "workspace.yaml", "-h", "127.0.0.1", "-p", str(port)],
            cwd=REPO,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: webserver, daemon, code server, runs
        )
    try:
        deadline = time.monotonic() + 240
        while True:
            if proc.poll() is not None:
                pytest.fail(f"dagster dev exited ({proc.returncode}):\n{log.read_text()[-3000:]}")
            try:
                with urllib.request.urlopen(f"{url}/server_info", timeout=5) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"dagster dev did not answer on {url}:\n{log.read_text()[-3000:]}")
            time.sleep(2)
        yield {"url": url, "root": root, "log": log}
    finally:
        # the whole group it started (webserver, daemon, code server, a run still going)
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=60)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            pass
        time.sleep(2)
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait(timeout=30)


@pytest.fixture(scope="module")
def browser(dagster_ui):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-dev-shm-usage",
        "--disable-gpu",
        "--window-size=1800,1100",
        "--lang=en-US",
    ):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(UI_TIMEOUT_S)
    yield driver
    driver.quit()


# ----------------------------------------------------------------------------------------------
# helpers on the page
# ----------------------------------------------------------------------------------------------


def _wait(driver, condition, timeout: float = UI_TIMEOUT_S, what: str = ""):
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, timeout, poll_frequency=0.5).until(condition, message=what)


def _body(driver) -> str:
    from selenium.webdriver.common.by import By

    return driver.find_element(By.TAG_NAME, "body").text


def _open(driver, url: str, text: str) -> None:
    """Open ``url`` and wait until ``text`` shows; dismiss the one-time community dialog."""
    from selenium.webdriver.common.by import By

    driver.get(url)
    _wait(driver, lambda d: text in _body(d), what=f"{text!r} on {url}")
    time.sleep(1)
    for button in driver.find_elements(By.XPATH, "//*[@role='dialog']//button[normalize-space()='Skip']"):
        button.click()


def _click_text(driver, text: str, scope: str = "") -> None:
    from selenium.webdriver.common.by import By

    xpath = f"{scope}//*[self::button or self::a or @role='menuitem'][normalize-space()='{text}']"
    element = _wait(driver, lambda d: next(iter(d.find_elements(By.XPATH, xpath)), None), what=text)
    driver.execute_script("arguments[0].click()", element)


def _graph_labels(driver) -> list[str]:
    """Texts of the asset graph's drawn nodes and group boxes (HTML inside SVG foreignObjects)."""
    return driver.execute_script(
        "return Array.from(document.querySelectorAll('foreignObject div'))"
        ".filter(e => e.children.length === 0).map(e => e.textContent.trim()).filter(t => t)"
    )


def _as_name(label: str, names: set[str]) -> str:
    """A node label as an asset name: the graph cuts long names with an ellipsis ("ad_…_ledger")."""
    if label in names or "…" not in label:
        return label
    head, _, tail = label.partition("…")
    matches = [n for n in names if n.startswith(head) and n.endswith(tail) and len(n) > len(head + tail)]
    return matches[0] if len(matches) == 1 else label


def _click_icon(driver, label: str) -> None:
    """Click the icon-only button whose icon is ``aria-label=label`` (zoom_out, settings...)."""
    driver.execute_script(
        "document.querySelector(`button [aria-label='${arguments[0]}']`).closest('button').click()", label
    )


def _graphql(driver, url: str, query: str, variables: dict | None = None) -> dict:
    """The UI's own GraphQL endpoint, called from the page (same origin)."""
    script = """
        const [url, body, done] = arguments;
        fetch(url, {method: 'POST', headers: {'Content-Type': 'application/json'}, body})
          .then(r => r.json()).then(done, e => done({error: String(e)}));
    """
    driver.set_script_timeout(UI_TIMEOUT_S)
    result = driver.execute_async_script(
        script, f"{url}/graphql", json.dumps({"query": query, "variables": variables or {}})
    )
    assert "errors" not in result and "error" not in result, result
    return result["data"]


RUNS_QUERY = """
query Runs($tag: String!) {
  runsOrError(filter: {tags: [{key: "dagster/partition", value: $tag}]}) {
    ... on Runs { results { runId status } }
  }
}
"""


# ----------------------------------------------------------------------------------------------
# the tests
# ----------------------------------------------------------------------------------------------


def test_catalog_and_lineage_show_every_asset(dagster_ui, browser, shots):
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.keys import Keys

    expected = _asset_keys()
    assert len(expected) >= 20

    # the catalog: one row per asset, "layer / name"; a tall window so no row is virtualized away
    browser.set_window_size(1800, 3200)
    _open(browser, f"{dagster_ui['url']}/assets", "bronze / orders")
    _wait(browser, lambda d: all(k.replace("/", " / ") in _body(d) for k in expected), what="every asset")
    rows = {line.strip() for line in _body(browser).splitlines()}
    missing = [k for k in expected if k.replace("/", " / ") not in rows]
    assert not missing, f"not in the asset catalog: {missing}"
    browser.save_screenshot(str(shots / "01_asset_catalog.png"))
    browser.set_window_size(1800, 1100)

    # the lineage graph: expand every group (graph settings, shortcut Alt+E), zoom out until every
    # asset node is drawn (nodes outside the view are not rendered), and count the node labels
    browser.set_window_size(2400, 1600)
    _open(browser, f"{dagster_ui['url']}/asset-groups", "Global asset lineage")
    groups = sorted({k.split("/")[0] for k in expected})
    _wait(browser, lambda d: all(g in _graph_labels(d) for g in groups), what="every group in the graph")
    want = Counter(k.split("/", 1)[1] for k in expected)
    ActionChains(browser).key_down(Keys.ALT).send_keys("e").key_up(Keys.ALT).perform()
    _wait(browser, lambda d: "orders" in _graph_labels(d), what="groups expanded")
    names = set(want)
    drawn: Counter = Counter()
    best = 0
    for _ in range(8):  # far out, nodes lose their labels: keep the most seen per name over the steps
        here = Counter(_as_name(label, names) for label in _graph_labels(browser))
        drawn |= here
        if sum((here & want).values()) > best:
            best = sum((here & want).values())
            browser.save_screenshot(str(shots / "02_asset_lineage.png"))
        if not want - drawn:
            break
        _click_icon(browser, "zoom_out")
        time.sleep(1)
    assert not want - drawn, f"asset nodes not in the lineage graph: {dict(want - drawn)}"
    browser.set_window_size(1800, 1100)


def test_materialize_a_day_from_the_ui_then_its_checks_passed(dagster_ui, browser, shots):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    url = dagster_ui["url"]
    browser.set_window_size(1800, 1100)
    started = time.monotonic()

    # "Materialize all…" -> partition selection -> 2026-11-01 -> "Launch 1 run"
    _open(browser, f"{url}/asset-groups", "Global asset lineage")
    _click_text(browser, "Materialize all…")
    dialog = "//*[@role='dialog']"
    _wait(
        browser,
        lambda d: "Partition selection" in d.find_element(By.XPATH, dialog).text,
        what="launch dialog",
    )
    assert f"materialize {len(_asset_keys())} assets" in browser.find_element(By.XPATH, dialog).text
    field = browser.find_element(By.XPATH, f"{dialog}//input[@type='text']")
    field.click()
    field.send_keys(Keys.CONTROL, "a")
    field.send_keys(DAY, Keys.ENTER)
    time.sleep(1)
    field.send_keys(Keys.TAB)
    _wait(
        browser, lambda d: "1 partition" in d.find_element(By.XPATH, dialog).text, what="1 partition selected"
    )
    browser.save_screenshot(str(shots / "03_materialize_dialog.png"))
    _click_text(browser, "Launch 1 run", scope=dialog)
    _wait(
        browser, lambda d: not d.find_elements(By.XPATH, dialog), timeout=120, what="dialog closes on launch"
    )

    # the run shows in the Runs page, tagged with the partition
    _open(browser, f"{url}/runs", "Runs")
    _wait(browser, lambda d: f"partition: {DAY}" in _body(d), what="the run in the Runs page")
    runs = _graphql(browser, url, RUNS_QUERY, {"tag": DAY})["runsOrError"]["results"]
    assert len(runs) == 1, runs
    run_id = runs[0]["runId"]
    assert run_id[:8] in _body(browser)
    browser.save_screenshot(str(shots / "04_run_launched.png"))

    # wait for it, watching its page (the UI updates it live); status from the same GraphQL
    _open(browser, f"{url}/runs/{run_id}", run_id[:8])
    deadline = time.monotonic() + RUN_TIMEOUT_S
    status = runs[0]["status"]
    while status not in ("SUCCESS", "FAILURE", "CANCELED"):
        assert time.monotonic() < deadline, f"run {run_id} still {status} after {RUN_TIMEOUT_S}s"
        time.sleep(10)
        status = _graphql(browser, url, RUNS_QUERY, {"tag": DAY})["runsOrError"]["results"][0]["status"]
    elapsed = time.monotonic() - started
    browser.refresh()
    _wait(browser, lambda d: run_id[:8] in _body(d), what="the run page")
    time.sleep(3)
    browser.save_screenshot(str(shots / "05_run_finished.png"))
    assert status == "SUCCESS", f"run {run_id} {status}; see {dagster_ui['log']}"
    _wait(browser, lambda d: "Success" in _body(d), what="'Success' on the run page")
    print(f"\nUI materialization of {DAY}: {status} in {elapsed:.0f}s (launch to success)")

    # the Checks tab of one asset: every check listed, each "Succeeded"; the first one "Passed"
    checks = _check_names(CHECKED_ASSET)
    assert checks
    _open(browser, f"{url}/assets/{CHECKED_ASSET}?view=checks", f"Checks ({len(checks)})")
    _wait(browser, lambda d: all(c in _body(d) for c in checks), what=f"the checks of {CHECKED_ASSET}")
    _wait(browser, lambda d: "Passed" in _body(d), what="'Passed' in the selected check")
    time.sleep(2)
    browser.save_screenshot(str(shots / "06_asset_checks.png"))
    lines = [line.strip() for line in _body(browser).splitlines()]
    status = {check: lines[lines.index(check) + 1] for check in checks}
    assert set(status.values()) == {"Succeeded"}, status
