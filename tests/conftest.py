"""Shared fixtures: an empty run store for every test session, and a real streamlit server and
a Debian-chromium browser for the e2e tests.

KAMOE_HOME points at a temporary folder for the whole session (so `kamoe train` in a test never
writes to ~/.kamoe); the app tests give each test its own. Every e2e server gets its own
temporary KAMOE_HOME too. The app tests (AppTest) clear Streamlit's caches in their own autouse
fixture; the browser fixtures are only built when an e2e test asks for them.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session", autouse=True)
def kamoe_home(tmp_path_factory):
    """An empty run store for the test session (KAMOE_HOME), restored afterwards."""
    home = tmp_path_factory.mktemp("kamoe-home")
    before = os.environ.get("KAMOE_HOME")
    os.environ["KAMOE_HOME"] = str(home)
    yield home
    if before is None:
        os.environ.pop("KAMOE_HOME", None)
    else:
        os.environ["KAMOE_HOME"] = before


def start_server(port: int, home: Path, timeout: float = 60.0) -> subprocess.Popen:
    """``streamlit run app.py`` on 127.0.0.1:port with KAMOE_HOME=home; returns once healthy."""
    cmd = [sys.executable, "-m", "streamlit", "run", str(ROOT / "app.py"),
           "--server.headless=true", f"--server.port={port}", "--server.address=127.0.0.1",
           "--browser.gatherUsageStats=false", "--server.fileWatcherType=none"]
    env = {**os.environ, "KAMOE_HOME": str(home)}
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            env=env)
    deadline = time.time() + timeout
    url = f"http://127.0.0.1:{port}/_stcore/health"
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"streamlit exited early: {proc.stderr.read().decode()[-2000:]}")
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                if r.read().decode().strip() == "ok":
                    return proc
        except OSError:
            time.sleep(0.3)
    proc.terminate()
    raise RuntimeError(f"streamlit did not become healthy on port {port} in {timeout:.0f} s")


def stop_server(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()


def chromium_path() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture(scope="session")
def chromium() -> str:
    """Path of Debian's chromium; skip (or fail under KAMOE_REQUIRE_BROWSER=1) without it."""
    path = chromium_path()
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        path = None
    if path is None:
        reason = ("Debian chromium (or the playwright package) is not installed: "
                  "apt-get install chromium; the e2e tests never download a browser")
        if os.environ.get("KAMOE_REQUIRE_BROWSER") == "1":
            pytest.fail(reason)
        pytest.skip(reason)
    return path


class AppServer:
    """A streamlit server of app.py that a test can stop and start again on the same store."""

    def __init__(self, home: Path) -> None:
        self.home = home
        self.port = free_port()
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> AppServer:
        self.proc = start_server(self.port, self.home)
        return self

    def stop(self) -> None:
        if self.proc is not None:
            stop_server(self.proc)
            self.proc = None


@pytest.fixture
def app_server(chromium, tmp_path):
    """A running server with its own empty run store (tmp_path/kamoe-home)."""
    server = AppServer(tmp_path / "kamoe-home").start()
    yield server
    server.stop()


@pytest.fixture
def app_url(app_server):
    return app_server.url


@pytest.fixture(scope="session")
def browser(chromium):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=chromium, headless=True, args=CHROMIUM_ARGS)
        yield b
        b.close()
