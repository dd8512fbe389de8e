"""Pairing: who this console is to the platform, asked once and remembered in ``agent.json``.

The agent id comes from, in order: the settings (``--agent-id`` / MT5C_AGENT_ID), ``agent.json`` in
the config dir (the answer of an earlier pairing), else ``POST /agents/pair`` with ``--key``; that
answer ``{"agent_id", "pairing_key"}`` is saved with mode 0600 before it is used, so that every later
start reuses it and never pairs a second time.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import tempfile
from dataclasses import dataclass, field, replace
from importlib import metadata
from pathlib import Path
from typing import Any

from mt5console.core.agent.platform import PlatformClient
from mt5console.core.broker.models import AccountState
from mt5console.core.settings import Settings

AGENT_FILE = "agent.json"
PAIR_PATH = "/agents/pair"
FILE_MODE = 0o600


class AgentFileError(Exception):
    """``agent.json`` cannot be read as a pairing answer; the message names the file (exit 2)."""


class PairingError(Exception):
    """The platform's answer to ``POST /agents/pair`` is not a usable pairing."""


@dataclass(frozen=True, slots=True)
class AgentIdentity:
    agent_id: str
    pairing_key: str = field(repr=False)


def agent_file(settings: Settings) -> Path:
    return settings.config_dir / AGENT_FILE


def _identity(data: Any, where: str, error: type[Exception]) -> AgentIdentity:
    if not isinstance(data, dict):
        raise error(f"{where}: expected an object with agent_id and pairing_key")
    agent_id, key = data.get("agent_id"), data.get("pairing_key")
    if isinstance(agent_id, int) and not isinstance(agent_id, bool):
        agent_id = str(agent_id)  # a platform may number its agents
    if not isinstance(agent_id, str) or not agent_id.strip():
        raise error(f"{where}: agent_id must be a non-empty string, not {agent_id!r}")
    if not isinstance(key, str) or not key:
        # The key itself is a secret: say what is wrong with it, never quote it.
        raise error(f"{where}: pairing_key must be a non-empty string")
    return AgentIdentity(agent_id.strip(), key)


def load_identity(path: Path) -> AgentIdentity | None:
    """The saved pairing, or None when there is none yet; AgentFileError when the file is bad."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except OSError as error:
        raise AgentFileError(f"{path}: cannot read the saved pairing: {error.strerror or error}") from None
    try:
        data = json.loads(text)
    except ValueError as error:
        raise AgentFileError(
            f"{path}: the saved pairing is not valid JSON ({error}); fix it, or delete it to pair again"
        ) from None
    return _identity(data, str(path), AgentFileError)


def save_identity(path: Path, identity: AgentIdentity) -> None:
    """Write the pairing with mode 0600 from its first byte (a temp file, then os.replace), so the
    key is never readable by others, and a crash never leaves half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps({"agent_id": identity.agent_id, "pairing_key": identity.pairing_key}, indent=2)
    descriptor, temp_name = tempfile.mkstemp(dir=path.parent, prefix=".agent-", suffix=".tmp")
    try:
        os.fchmod(descriptor, FILE_MODE)  # mkstemp already makes 0600; said again, as it matters
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            handle.write(text + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp_name, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp_name)
        raise


def console_version() -> str:
    try:
        return metadata.version("mt5console")
    except metadata.PackageNotFoundError:
        return "unknown"


def pair_body(pairing_key: str, account: AccountState | None) -> dict[str, Any]:
    """The body of ``POST /agents/pair`` (INTERFACE.md)."""
    return {
        "pairing_key": pairing_key,
        "name": f"mt5console on {socket.gethostname()}",
        "version": console_version(),
        "broker": account.company if account is not None else None,
        "account": str(account.login) if account is not None else None,
    }


async def pair(client: PlatformClient, pairing_key: str, account: AccountState | None) -> AgentIdentity:
    """Ask the platform for an agent id; raises PlatformUnavailable / PlatformRefused / PairingError."""
    response = await client.request("POST", PAIR_PATH, pair_body(pairing_key, account))
    return _identity(response.body, f"POST {PAIR_PATH}: the platform's answer", PairingError)


def needs_pairing(settings: Settings) -> bool:
    """True when the console must pair: a platform and a key, but no agent id given or saved."""
    return bool(settings.api_url and settings.pairing_key and not settings.agent_id)


def with_identity(settings: Settings, identity: AgentIdentity) -> Settings:
    """The settings with the agent id and key of a pairing (the Pusher channel follows the id)."""
    return replace(settings, agent_id=identity.agent_id, pairing_key=identity.pairing_key)


def apply_saved_identity(settings: Settings) -> Settings:
    """The settings with the saved pairing filled in. The settings' own agent id wins over the
    file; the file's key is used with its own agent id only. AgentFileError when the file is bad."""
    if not settings.api_url:
        return settings
    saved = load_identity(agent_file(settings))
    if saved is None:
        return settings
    if settings.agent_id is None:
        return with_identity(settings, saved)
    if settings.agent_id == saved.agent_id and not settings.pairing_key:
        return replace(settings, pairing_key=saved.pairing_key)
    return settings
