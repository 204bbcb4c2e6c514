"""End-to-end: the real app in Debian chromium (Playwright), against `streamlit run app.py`.

Checks what AppTest cannot see: plotly and KaTeX really render, the fragment polls a background
training, Stop works mid-run, and two browser sessions stay apart. With KAMOE_SCREENSHOTS=1 the
main pages are saved to assets/*.png.
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
        page.get_by_text("Formula R² (test)").wait_for()
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
