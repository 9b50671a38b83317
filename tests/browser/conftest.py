"""Fixtures for the end-to-end tests: a real run, the dashboard served on 127.0.0.1, and a headless
Chromium driven by Playwright. Everything is skipped when /usr/bin/chromium is missing."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SCENARIOS = ("baseline", "ai_assistant", "proactive_alerts", "loyalty_tiers")
REPS = 3
SEED = 20261101
HORIZON_DAYS = 487  # the full baseline horizon, so LTV and payback appear in the README screenshot


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    if CHROMIUM.exists():
        return
    skip = pytest.mark.skip(
        reason=f"{CHROMIUM} is not installed (apt-get install -y chromium chromium-driver)"
    )
    for item in items:
        if "browser" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def e2e_world(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A runs folder with one real run of four shipped scenarios, and a copy of the scenario files."""
    from sim.experiment import run_experiment, with_horizon
    from sim.loader import load_scenario
    from sim.store import write_run

    root = tmp_path_factory.mktemp("e2e")
    scen_dir = root / "scenarios"
    scen_dir.mkdir()
    for p in (ROOT / "scenarios").glob("*.yaml"):
        shutil.copy(p, scen_dir / p.name)
    scenarios = [
        with_horizon(load_scenario(scen_dir / f"{n}.yaml"), HORIZON_DAYS) for n in SCENARIOS
    ]
    results = run_experiment(scenarios, REPS, SEED, workers=2)
    runs = root / "runs"
    path = write_run(runs, results, {s.name: s for s in scenarios}, SEED, REPS, {"wall_s": 0.0})
    return {"root": root, "runs": runs, "scenarios": scen_dir, "run_id": path.name}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def server(e2e_world: dict[str, Any]) -> Iterator[str]:
    """The dashboard served by ``dashboard.app.main`` in its own process group; yields its URL."""
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is not installed")
    port = _free_port()
    code = (
        "import sys; from pathlib import Path; from dashboard.app import main; "
        "main(Path(sys.argv[1]), Path(sys.argv[2]), port=int(sys.argv[3]))"
    )
    log = open(e2e_world["root"] / "server.log", "w")  # noqa: SIM115 - closed at teardown
    proc = subprocess.Popen(
        [
            sys.executable,
            "-c",
            code,
            str(e2e_world["runs"]),
            str(e2e_world["scenarios"]),
            str(port),
        ],
        cwd=ROOT,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # its own group: background jobs end with it
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(url + "/", timeout=2) as resp:
                    if resp.status == 200:
                        break
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(
                    f"the dashboard did not start: {(e2e_world['root'] / 'server.log').read_text()}"
                )
            time.sleep(0.3)
        yield url
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        log.close()


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is not installed")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture
def page(browser: Any, server: str) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1400, "height": 1000}, accept_downloads=True)
    pg = context.new_page()
    pg.set_default_timeout(30_000)
    yield pg
    context.close()
