"""Pairing: who this console is to the platform, asked once and remembered in ``agent.json``.

The agent id comes from, in order: the settings (``--agent-id`` / MT5C_AGENT_ID), ``agent.json`` in
the config dir (the answer of an earlier pairing), else ``POST /agents/pair`` with ``--key``; that
answer ``{"agent_id", "pairing_key"}`` is saved with mode 0600 before it is used, so that every later
start reuses it and never pairs a second time.

The file also records the platform URL it was paired with: a start with another ``--api-url`` never
sends that platform the saved key (it pairs afresh with ``--key``). A file from before the URL was
recorded is taken to be for the URL given. With the same URL, the saved key wins over a different
``--key``: it is the one the platform issued to this agent, and ``--key`` is only sent to pair.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from importlib import metadata
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

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
    api_url: str | None = None  # the platform it was paired with (None: a file saved before it was kept)


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
    api_url = data.get("api_url")
    if api_url is not None and (not isinstance(api_url, str) or not api_url.strip()):
        raise error(f"{where}: api_url must be a non-empty string, not {api_url!r}")
    return AgentIdentity(agent_id.strip(), key, api_url.strip() if api_url else None)


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
    document = {"agent_id": identity.agent_id, "pairing_key": identity.pairing_key}
    if identity.api_url is not None:
        document["api_url"] = identity.api_url
    text = json.dumps(document, indent=2)
    descriptor, temp_name = tempfile.mkstemp(dir=path.parent, prefix=".agent-", suffix=".tmp")
    try:
        # mkstemp already makes 0600; said again, as it matters. Windows before Python 3.13 has no
        # fchmod (and no such modes: a file there is the user's through the profile folder's ACL).
        if hasattr(os, "fchmod"):
            os.fchmod(descriptor, FILE_MODE)
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
    answer = _identity(response.body, f"POST {PAIR_PATH}: the platform's answer", PairingError)
    return replace(answer, api_url=client.base_url)


def needs_pairing(settings: Settings) -> bool:
    """True when the console must pair: a platform and a key, but no agent id given or saved."""
    return bool(settings.api_url and settings.pairing_key and not settings.agent_id)


def with_identity(settings: Settings, identity: AgentIdentity) -> Settings:
    """The settings with the agent id and key of a pairing (the Pusher channel follows the id)."""
    return replace(settings, agent_id=identity.agent_id, pairing_key=identity.pairing_key)


def same_platform(first: str, second: str) -> bool:
    """Whether two platform URLs name the same place (scheme and host in any case, a final "/")."""
    a, b = urlsplit(first.strip()), urlsplit(second.strip())
    return (a.scheme.lower(), a.netloc.lower(), a.path.rstrip("/"), a.query) == (
        b.scheme.lower(),
        b.netloc.lower(),
        b.path.rstrip("/"),
        b.query,
    )


def saved_for_elsewhere(settings: Settings, saved: AgentIdentity | None) -> bool:
    """True when ``saved`` is a pairing with another platform than ``settings.api_url``: its key must
    not be sent there."""
    return bool(
        saved is not None
        and saved.api_url is not None
        and settings.api_url
        and not same_platform(saved.api_url, settings.api_url)
    )


def apply_saved_identity(settings: Settings, *, say: Callable[[str], None] | None = None) -> Settings:
    """The settings with the saved pairing filled in. The settings' own agent id wins over the
    file; the file's key is used with its own agent id only, and only with the platform it was
    paired with (see the module docstring). ``say`` is told, for the log, what was decided and why
    whenever it is not plain. AgentFileError when the file is bad."""
    if not settings.api_url:
        return settings
    path = agent_file(settings)
    saved = load_identity(path)
    if saved is None:
        return settings
    tell = say or (lambda _message: None)
    if saved_for_elsewhere(settings, saved):
        assert saved.api_url is not None
        then = (
            "pairing afresh with the given key"
            if needs_pairing(settings)
            else "give --key to pair with it, or --agent-id with its key"
        )
        if settings.agent_id is None or settings.agent_id == saved.agent_id:
            tell(
                f"{path} holds the pairing with {saved.api_url} (agent {saved.agent_id}), not with "
                f"{settings.api_url}: its key is not sent there; {then}"
            )
        return settings
    if settings.agent_id is not None and settings.agent_id != saved.agent_id:
        return settings
    if saved.api_url is None:
        tell(
            f"{path} does not say which platform it was paired with (saved by an older version): "
            f"taken to be the pairing with {settings.api_url}"
        )
    if settings.agent_id is None:
        if settings.pairing_key and settings.pairing_key != saved.pairing_key:
            tell(
                f"the key saved in {path} is used for agent {saved.agent_id}, not the given pairing key: "
                "the platform issued it when this console paired, and a pairing key is only sent to "
                f"pair; to pair again with the given key, delete {path}"
            )
        return with_identity(settings, saved)
    if not settings.pairing_key:
        return replace(settings, pairing_key=saved.pairing_key)
    return settings
