"""End-to-end: the real app in Debian chromium (Playwright), against `streamlit run app.py`.

Checks what AppTest cannot see: plotly and KaTeX really render, the fragment polls a background
training, Stop works mid-run, two browser sessions stay apart, Enter in a number field does not
train, and runs survive a page reload and a server restart (a `kamoe train` run shows up too).
Every test gets its own server with an empty run store (a temporary KAMOE_HOME, conftest.py).
With KAMOE_SCREENSHOTS=1 the main pages are saved to assets/*.png.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e

ASSETS = Path(__file__).resolve().parents[1] / "assets"
IDLE = "[data-testid='stApp'][data-test-script-state='notRunning']"
TIMEOUT = 60_000  # ms; a default training takes ~1-2 s, page loads well under that
FORMULA_TIMEOUT = 2 * TIMEOUT + 30_000  # ms; the extraction has its own 60 s limit (the page's)


def wait_idle(page) -> None:
    page.wait_for_timeout(250)
    page.wait_for_selector(IDLE, timeout=TIMEOUT)


def go(page, title: str) -> None:
    page.get_by_role("link", name=title, exact=True).click()
    page.get_by_role("heading", name=title, exact=True).first.wait_for(timeout=TIMEOUT)
    wait_idle(page)


def shot(page, name: str) -> None:
    if os.environ.get("KAMOE_SCREENSHOTS") == "1":
        ASSETS.mkdir(exist_ok=True)
        page.evaluate("() => document.querySelectorAll('[data-testid=stMain], section.main')"
                      ".forEach(el => el.scrollTo(0, 0))")
        page.wait_for_timeout(800)  # let plotly finish its transitions
        page.screenshot(path=str(ASSETS / f"{name}.png"))


def new_page(browser, app_url):
    tall = os.environ.get("KAMOE_SCREENSHOTS") == "1"  # show more of each page in the pictures
    context = browser.new_context(viewport={"width": 1440, "height": 1500 if tall else 1000})
    page = context.new_page()
    page.set_default_timeout(TIMEOUT)
    page.goto(app_url)
    page.get_by_role("heading", name="Data", exact=True).first.wait_for()
    wait_idle(page)
    return context, page


def click_train(page) -> None:
    page.get_by_role("button", name="Train", exact=True).click()


def plotly_traces(page) -> list[int]:
    return page.evaluate(
        "() => Array.from(document.querySelectorAll('.js-plotly-plot'))"
        ".map(el => (el.data || []).length)")


def test_default_flow_data_train_splines_routing_formula(browser, app_url):
    context, page = new_page(browser, app_url)
    try:
        page.locator(".katex").first.wait_for()  # the Feynman formula on the Data page
        page.locator(".js-plotly-plot").first.wait_for()
        shot(page, "data")
        go(page, "Train")
        click_train(page)
        page.get_by_text("Test R²").first.wait_for()
        wait_idle(page)
        shot(page, "train")
        go(page, "Splines")
        page.locator(".js-plotly-plot").first.wait_for()
        traces = plotly_traces(page)
        assert traces and all(n > 0 for n in traces), traces
        shot(page, "splines")
        go(page, "Routing")
        page.get_by_text("has no gate").wait_for()
        go(page, "Formula")
        page.get_by_role("button", name="Extract formula").click()
        page.get_by_text("Formula R² (test)").wait_for(timeout=FORMULA_TIMEOUT)
        wait_idle(page)
        assert page.locator(".katex").count() >= 2  # found formula and ground truth
        page.get_by_text("Recovered: the formula").wait_for()
        shot(page, "formula")
    finally:
        context.close()


def test_stop_mid_run(browser, app_url):
    context, page = new_page(browser, app_url)
    try:
        go(page, "Train")
        page.get_by_label("epochs", exact=True).fill("100000")
        page.get_by_label("early-stopping patience (0 = off)").fill("0")
        click_train(page)
        stop = page.get_by_role("button", name=re.compile("Stop"))
        stop.wait_for()
        page.wait_for_timeout(800)
        stop.click()
        page.get_by_text("Training stopped").wait_for()
        assert page.get_by_text("Stopped by request").count() >= 1
    finally:
        context.close()


def test_two_sessions_train_different_models_without_seeing_each_other(browser, app_url):
    ctx_a, a = new_page(browser, app_url)
    ctx_b, b = new_page(browser, app_url)
    try:
        go(a, "Train")
        go(b, "Train")
        b.get_by_test_id("stSelectbox").filter(has_text="Model").click()
        b.get_by_role("option", name=re.compile(r"^kamoe-mlp:")).click()
        wait_idle(b)
        b.get_by_label("epochs", exact=True).fill("10")
        click_train(b)
        click_train(a)
        wait_idle(b)
        wait_idle(a)
        # Both leave the Train page while training: nothing is lost, the sidebar keeps polling.
        go(a, "Guide")
        go(b, "Guide")
        # Two trainings share the server's CPU (and the GIL): allow for a busy machine.
        for p in (a, b):
            p.locator("[data-testid='stSidebar']").get_by_text("Active run").wait_for(
                timeout=2 * TIMEOUT)
        go(a, "Train")
        go(b, "Train")
        # Each session sees only its own run (the run heading names the model).
        b.get_by_role("heading", name=re.compile(r"kamoe-mlp on Feynman")).wait_for()
        a.get_by_role("heading", name=re.compile(r" kan on Feynman")).wait_for()
        assert a.get_by_role("heading", name=re.compile("kamoe-mlp")).count() == 0
        assert b.get_by_role("heading", name=re.compile(" kan on")).count() == 0
        go(b, "Routing")
        b.get_by_text("Which expert wins where").first.wait_for()
        b.locator(".js-plotly-plot").nth(2).wait_for()
        assert all(n > 0 for n in plotly_traces(b))
        shot(b, "routing")
    finally:
        ctx_a.close()
        ctx_b.close()


def test_enter_in_a_number_field_keeps_the_value_and_does_not_train(browser, app_url):
    context, page = new_page(browser, app_url)
    try:
        go(page, "Train")
        epochs = page.get_by_label("epochs", exact=True)
        epochs.fill("123")
        epochs.press("Enter")
        wait_idle(page)
        page.wait_for_timeout(1500)  # a training would show its progress or result by now
        assert page.get_by_role("button", name=re.compile("Stop")).count() == 0
        assert page.get_by_text("Test R²").count() == 0
        go(page, "Data")
        go(page, "Train")
        assert page.get_by_label("epochs", exact=True).input_value() == "123"
    finally:
        context.close()


def test_runs_survive_a_reload_and_a_restart_and_cli_runs_appear(browser, app_server):
    import subprocess
    import sys

    context, page = new_page(browser, app_server.url)
    try:
        go(page, "Train")
        page.get_by_label("epochs", exact=True).fill("15")  # a short fit: the store is tested
        page.get_by_label("epochs", exact=True).press("Enter")
        wait_idle(page)
        click_train(page)
        page.get_by_text("Test R²").first.wait_for()
        wait_idle(page)
        go(page, "Formula")
        page.get_by_role("button", name="Extract formula").click()
        page.get_by_text("Recovered: the formula").wait_for(timeout=FORMULA_TIMEOUT)
        wait_idle(page)
        page.reload()  # a new browser session: the run, its plots and its formula are back
        page.get_by_role("heading", name="Formula", exact=True).first.wait_for()
        page.get_by_text("Recovered: the formula").wait_for()
        page.locator(".katex").nth(1).wait_for()  # the formula and the ground truth, typeset
        wait_idle(page)
        go(page, "Splines")
        page.locator(".js-plotly-plot").first.wait_for()
        assert all(n > 0 for n in plotly_traces(page))
        go(page, "Train")
        page.get_by_text("Test R²").first.wait_for()
    finally:
        context.close()
    # A run trained on the command line into the same store, then a server restart.
    env = {**os.environ, "KAMOE_HOME": str(app_server.home)}
    out = subprocess.run([sys.executable, "-m", "kamoe", "train", "--dataset", "moons",
                          "--model", "mlp", "--epochs", "2"], env=env, capture_output=True,
                         text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    app_server.stop()
    app_server.start()
    context, page = new_page(browser, app_server.url)
    try:
        go(page, "Train")
        # The newest run, the CLI's, is the active one; the dashboard's is listed beside it.
        page.get_by_role("heading", name=re.compile(r"mlp on moons")).wait_for()
        sidebar = page.locator("[data-testid='stSidebar']")
        sidebar.get_by_test_id("stSelectbox").click()
        page.get_by_role("option", name=re.compile(r"kan on Feynman")).click()
        wait_idle(page)
        go(page, "Formula")
        page.get_by_text("Recovered: the formula").wait_for()  # still there after a restart
    finally:
        context.close()
