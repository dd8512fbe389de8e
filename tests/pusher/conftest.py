"""Fixtures of the Pusher and platform tests: a real soketi and the loopback platform server."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.platform_server import PlatformServer
from tests.pusher.remote_rig import PAIRING_KEY
from tests.pusher.soketi_process import Soketi


@pytest.fixture(scope="session")
def soketi(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Soketi]:
    """One soketi for the session; tests keep apart by their channel names."""
    server = Soketi(tmp_path_factory.mktemp("soketi"))
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def own_soketi(tmp_path: Path) -> Iterator[Soketi]:
    """A soketi of the test's own, for tests that kill and restart it."""
    server = Soketi(tmp_path / "soketi")
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def platform(soketi: Soketi) -> Iterator[PlatformServer]:
    with PlatformServer(
        key=PAIRING_KEY, pusher_key=soketi.key, pusher_secret=soketi.secret
    ).serving() as server:
        yield server


@pytest.fixture
def bare_platform() -> Iterator[PlatformServer]:
    """The loopback platform without a Pusher server behind it."""
    with PlatformServer(
        key=PAIRING_KEY, pusher_key="app-key", pusher_secret="app-secret-1d9e"
    ).serving() as server:
        yield server
