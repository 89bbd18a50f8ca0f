"""The browser tests' service (one per test session) and chromium (one per module); see browsing.py."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import pytest

from allpath.testing import running_server
from tests.web.browsing import CHROMIUM, seed

if TYPE_CHECKING:
    from playwright.sync_api import Browser


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """The real service (uvicorn in a subprocess) on a temporary SQLite database seeded by `seed`.

    Shared by every browser test: each works on patients and accounts of its own (or only reads),
    so none depends on a fresh database.
    """
    tmp = tmp_path_factory.mktemp("browser")
    database_url = f"sqlite:///{tmp / 'allpath.db'}"
    ids = seed(database_url)
    env = {
        **os.environ,
        "ALLPATH_DATABASE_URL": database_url,
        "ALLPATH_SECRET_KEY": "browser-test-secret-not-for-production",
        # The accounts were made with the session's cheap hashes (tests/conftest.py): the server
        # keeps them so, instead of re-hashing each at production cost on its first log-in.
        "ALLPATH_INSECURE_TEST_PASSWORD_HASH": "1",
    }
    with running_server(["--log-level", "warning"], env=env, log_path=tmp / "server.log") as running:
        yield {"base": running.base_url, "ids": ids}


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Chromium for one module: Playwright's sync API keeps an asyncio loop running in this
    thread while it is open, and tests after the browser modules (asyncio.run) need it gone."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(
            executable_path=CHROMIUM,
            headless=True,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
            ],
        )
        yield b
        b.close()
