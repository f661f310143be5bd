"""The e2e tests' browser: Debian's Chromium (or ``$CHROMIUM``) driven by Playwright, which
never downloads one; screenshots go to ``test-artifacts/``."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "test-artifacts"
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


def chromium_path() -> str:
    """``$CHROMIUM`` or the Chromium on PATH; missing fails the test (it never skips)."""
    path = (
        os.environ.get("CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    )
    if path is None:
        pytest.fail(
            "Chromium not found: run `make system-deps` (as root), `sudo apt-get install -y "
            "chromium`, or set CHROMIUM to a Chromium or Chrome binary",
            pytrace=False,
        )
    return path


@contextmanager
def browser_page() -> Iterator:
    """A page of a fresh headless Chromium profile, 1400x900."""
    executable = chromium_path()
    from playwright.sync_api import sync_playwright

    profile = tempfile.mkdtemp(prefix="chromium-profile-")
    try:
        with sync_playwright() as playwright:
            # A persistent context is how Playwright takes a --user-data-dir: a fresh one here.
            context = playwright.chromium.launch_persistent_context(
                profile,
                executable_path=executable,
                headless=True,
                args=CHROMIUM_ARGS,
                viewport={"width": 1400, "height": 900},
            )
            try:
                context.set_default_timeout(30_000)
                yield context.new_page()
            finally:
                context.close()
    finally:
        shutil.rmtree(profile, ignore_errors=True)


def log_in(page, airflow) -> None:
    """Log in to Airflow's UI as ``airflow``'s user, from its DAGs page."""
    page.goto(f"{airflow.url}/dags")
    page.wait_for_url("**/auth/login**")
    page.fill("input[name=username]", airflow.username)
    page.fill("input[name=password]", airflow.password)
    page.click("button[type=submit]")
    page.wait_for_url("**/dags")
