"""`python -m kamoe bench dashboard`: how fast the dashboard feels, measured in a real browser.

Starts ``streamlit run app.py`` on a free local port, drives Debian chromium with Playwright
(never downloads a browser) and times, per repeat:

* train: from clicking **Train** (default Feynman KAN) until the finished run's metrics show;
* switch: after training, clicking a page in the sidebar until that page's script has finished
  (median over several switches between Splines, Routing, Formula, Data and Train);
* reload: a browser reload of the Train page until the stored runs are listed again (a new
  session reading the run store; the server runs on an empty temporary KAMOE_HOME).

Prints a table (or JSON with ``--json``). Needs the playwright package and chromium.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

from kamoe.errors import UserError

ROOT = Path(__file__).resolve().parents[2]
IDLE = "[data-testid='stApp'][data-test-script-state='notRunning']"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
SWITCH_PAGES = ["Splines", "Routing", "Formula", "Data", "Train"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--repeats", type=int, default=3, help="training runs to time (3)")
    parser.add_argument("--switches", type=int, default=10,
                        help="page switches to time after training (10)")
    parser.add_argument("--chromium", default=None, help="browser binary (default: chromium)")
    parser.add_argument("--app", default=str(ROOT / "app.py"), help="the streamlit entry point")
    parser.add_argument("--json", action="store_true", help="print results as JSON")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start(app: str, port: int, home: str, timeout: float = 60.0) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "streamlit", "run", app, "--server.headless=true",
           f"--server.port={port}", "--server.address=127.0.0.1",
           "--browser.gatherUsageStats=false", "--server.fileWatcherType=none"]
    proc = subprocess.Popen(cmd, cwd=Path(app).parent, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, env={**os.environ, "KAMOE_HOME": home})
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError("streamlit exited before it became healthy")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=2) as r:
                if r.read().decode().strip() == "ok":
                    return proc
        except OSError:
            time.sleep(0.2)
    proc.terminate()
    raise RuntimeError(f"streamlit did not answer on port {port} within {timeout:.0f} s")


def _wait_idle(page) -> None:
    page.wait_for_timeout(100)
    page.wait_for_selector(IDLE, timeout=60_000)


def measure(app: str, chromium: str, repeats: int, switches: int) -> dict[str, Any]:
    """Timings in seconds: one per training repeat and one per page switch."""
    from playwright.sync_api import sync_playwright

    port = _free_port()
    home = tempfile.TemporaryDirectory(prefix="kamoe-bench-home-")
    server = _start(app, port, home.name)
    train_s: list[float] = []
    switch_s: list[float] = []
    reload_s: list[float] = []
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=chromium, headless=True,
                                        args=CHROMIUM_ARGS)
            context = browser.new_context(viewport={"width": 1440, "height": 1000})
            page = context.new_page()
            page.set_default_timeout(120_000)
            page.goto(f"http://127.0.0.1:{port}")
            _wait_idle(page)
            page.get_by_role("link", name="Train", exact=True).click()
            _wait_idle(page)
            for k in range(repeats):
                t0 = time.perf_counter()
                page.get_by_role("button", name="Train", exact=True).click()
                # The runs table's heading counts the runs once the finished job is collected.
                page.get_by_text(f"Runs ({k + 1})").wait_for()
                _wait_idle(page)
                train_s.append(time.perf_counter() - t0)
                print(f"train {k + 1}/{repeats}: {train_s[-1]:.2f} s", file=sys.stderr)
                page.get_by_role("link", name="Data", exact=True).click()
                _wait_idle(page)
                page.get_by_role("link", name="Train", exact=True).click()
                _wait_idle(page)
            for k in range(switches):
                title = SWITCH_PAGES[k % len(SWITCH_PAGES)]
                t0 = time.perf_counter()
                page.get_by_role("link", name=title, exact=True).click()
                try:
                    page.get_by_role("heading", name=title, exact=True).first.wait_for()
                    _wait_idle(page)
                except Exception:
                    page.screenshot(path="/tmp/kamoe_bench_fail.png")
                    raise
                switch_s.append(time.perf_counter() - t0)
                print(f"switch to {title}: {switch_s[-1]:.3f} s", file=sys.stderr)
            page.get_by_role("link", name="Train", exact=True).click()
            _wait_idle(page)
            for _ in range(repeats):
                t0 = time.perf_counter()
                page.reload()
                page.get_by_text(f"Runs ({repeats})").wait_for()
                _wait_idle(page)
                reload_s.append(time.perf_counter() - t0)
                print(f"reload -> runs listed: {reload_s[-1]:.3f} s", file=sys.stderr)
            browser.close()
    finally:
        server.terminate()
        try:
            server.wait(10)
        except subprocess.TimeoutExpired:
            server.kill()
        home.cleanup()
    return {"train_s": train_s, "switch_s": switch_s, "reload_s": reload_s}


def run(args: argparse.Namespace) -> int:
    chromium = args.chromium or shutil.which("chromium") or shutil.which("chromium-browser")
    if not chromium:
        raise UserError("chromium not found: apt-get install chromium (the benchmark never "
                         "downloads a browser), or pass --chromium PATH")
    try:
        import playwright  # noqa: F401
    except ImportError:
        raise UserError("the playwright package is needed: pip install playwright") from None
    if args.repeats < 1 or args.switches < 1:
        raise UserError("--repeats and --switches must be >= 1")
    res = measure(args.app, chromium, args.repeats, args.switches)
    rows = [("click Train -> finished default run", res["train_s"]),
            ("page switch after training", res["switch_s"]),
            ("reload Train -> stored runs listed", res["reload_s"])]
    summary = {name: {"n": len(v), "median_s": statistics.median(v), "min_s": min(v),
                      "max_s": max(v)} for name, v in rows}
    meta = {"cpus": os.cpu_count(), "python": sys.version.split()[0],
            "date": time.strftime("%Y-%m-%d %H:%M:%S")}
    if args.json:
        print(json.dumps({"results": summary, "raw": res, "machine": meta}, indent=2))
        return 0
    print(f"{'measure':40s} {'n':>3s} {'median s':>9s} {'min s':>8s} {'max s':>8s}")
    for name, s in summary.items():
        print(f"{name:40s} {s['n']:3d} {s['median_s']:9.3f} {s['min_s']:8.3f} {s['max_s']:8.3f}")
    print(f"({meta['cpus']} CPUs, Python {meta['python']}, {meta['date']}; Debian chromium, "
          "default run = KAN [2,5,1] on Feynman II.3.24, LBFGS 60 epochs)")
    return 0
