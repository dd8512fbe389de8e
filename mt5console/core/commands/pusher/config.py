"""The Pusher command source's settings and channel authorisation.

A private channel's subscription is signed either by the platform's auth endpoint (preferred: the
secret stays on the platform), called here with httpx and a timeout (pysher's own call has none),
or locally with the app secret, as the Pusher protocol defines: ``key:HMAC-SHA256(secret,
"socket_id:channel")``.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass, field, replace

import httpx

from mt5console.core.settings import Settings

AUTH_TIMEOUT = 10.0
NOT_STARTED = "not started: "  # how from_settings' reasons begin (said when the runtime starts)
# The agent id a pairing at start will bring, for checking the settings before it is known.
AGENT_ID_TO_COME = "{agent id}"


class PusherConfigError(ValueError):
    """The Pusher settings cannot work; the message names the setting."""


@dataclass(frozen=True, slots=True)
class PusherConfig:
    key: str
    channel: str
    cluster: str | None = None
    host: str | None = None  # a self-hosted Pusher-protocol server instead of Pusher's cluster
    port: int | None = None
    secure: bool = True
    auth_endpoint: str | None = None
    auth_bearer: str | None = field(default=None, repr=False)  # sent to the auth endpoint
    secret: str | None = field(default=None, repr=False)  # signs subscriptions locally

    def __post_init__(self) -> None:
        if not self.key:
            raise PusherConfigError("pusher_key: required (the Pusher app key)")
        if not self.channel:
            raise PusherConfigError("pusher_channel: required")
        if self.channel.startswith("presence-"):
            raise PusherConfigError(f"pusher_channel: {self.channel!r}: presence channels are not supported")
        if self.auth_endpoint and self.secret:
            raise PusherConfigError("give either the Pusher auth endpoint or the Pusher secret, not both")
        if self.private and not (self.auth_endpoint or self.secret):
            raise PusherConfigError(
                f"pusher_channel: {self.channel!r} is private: give --pusher-auth-endpoint "
                "(preferred: the secret stays on the platform) or --pusher-secret"
            )

    @property
    def private(self) -> bool:
        return self.channel.startswith("private-")

    @property
    def url_port(self) -> int:
        return self.port or (443 if self.secure else 80)

    @property
    def where(self) -> str:
        scheme = "wss" if self.secure else "ws"
        if self.host:
            return f"{scheme}://{self.host}:{self.url_port}"
        return f"Pusher cluster {self.cluster or 'mt1'}"

    @classmethod
    def from_settings(cls, settings: Settings) -> PusherConfig:
        """The source's settings; PusherConfigError says what is missing."""
        if not settings.pusher_key:
            raise PusherConfigError(f"{NOT_STARTED}no Pusher app key (--pusher-key)")
        channel = settings.pusher_channel
        if not channel and settings.agent_id:
            channel = f"private-executor-{settings.agent_id}"
        if not channel:
            raise PusherConfigError(
                f"{NOT_STARTED}no channel (give --pusher-channel, or --agent-id for private-executor-{{id}})"
            )
        return cls(
            key=settings.pusher_key,
            channel=channel,
            cluster=settings.pusher_cluster,
            host=settings.pusher_host,
            port=settings.pusher_port,
            secure=not settings.pusher_insecure,
            auth_endpoint=settings.pusher_auth_endpoint,
            auth_bearer=settings.pairing_key,
            secret=settings.pusher_secret,
        )


def pusher_wanted(settings: Settings) -> bool:
    """Whether any Pusher setting was given (none: commands come from local files only)."""
    return any(
        (
            settings.pusher_key,
            settings.pusher_channel,
            settings.pusher_host,
            settings.pusher_auth_endpoint,
            settings.pusher_secret,
        )
    )


def check_pusher_settings(settings: Settings, *, agent_id_to_come: bool) -> None:
    """Raise PusherConfigError when the Pusher settings given can never work, with the same rules as
    the source applies when it starts (``from_settings``): checked when the settings are loaded, so
    that the console does not trade on without its remote kill switch. ``agent_id_to_come``: no
    agent id is given, but one will come (saved in agent.json, or from pairing at start)."""
    if not pusher_wanted(settings):
        return
    if agent_id_to_come and not settings.agent_id:
        settings = replace(settings, agent_id=AGENT_ID_TO_COME)
    try:
        PusherConfig.from_settings(settings)  # only its checks are wanted here
    except PusherConfigError as error:
        raise PusherConfigError(str(error).removeprefix(NOT_STARTED)) from None


def sign_subscription(secret: str, key: str, socket_id: str, channel: str) -> str:
    """The ``auth`` of a private-channel subscription: ``key:HMAC-SHA256(secret, "socket_id:channel")``."""
    digest = hmac.new(secret.encode(), f"{socket_id}:{channel}".encode(), hashlib.sha256).hexdigest()
    return f"{key}:{digest}"


class ChannelAuthError(Exception):
    """The subscription could not be authorised; the message says why (never with a secret)."""


async def endpoint_auth(
    config: PusherConfig, socket_id: str, http: httpx.AsyncClient, seconds: float = AUTH_TIMEOUT
) -> str:
    """Ask the platform's auth endpoint to sign the subscription (form ``socket_id``, ``channel_name``
    as Pusher's clients send it; answer ``{"auth": "key:signature"}``)."""
    assert config.auth_endpoint is not None
    headers = {"Authorization": f"Bearer {config.auth_bearer}"} if config.auth_bearer else {}
    where = f"auth endpoint {config.auth_endpoint}"
    try:
        response = await http.post(
            config.auth_endpoint,
            data={"socket_id": socket_id, "channel_name": config.channel},
            headers=headers,
            timeout=seconds,
        )
    except httpx.TimeoutException:
        raise ChannelAuthError(f"{where}: no answer within {seconds:g} s") from None
    except httpx.TransportError as error:
        raise ChannelAuthError(f"{where}: unreachable ({error or type(error).__name__})") from None
    except httpx.HTTPError as error:  # a bad URL, an undecodable answer...
        raise ChannelAuthError(f"{where}: {type(error).__name__}: {error}") from None
    if response.status_code != 200:
        raise ChannelAuthError(f"{where}: HTTP {response.status_code} {response.text[:200].strip()}")
    try:
        auth = response.json()["auth"]
    except (ValueError, KeyError, TypeError):
        raise ChannelAuthError(f"{where}: the answer has no 'auth' field") from None
    if not isinstance(auth, str) or not auth.startswith(f"{config.key}:"):
        raise ChannelAuthError(f"{where}: the answer's 'auth' is not '<app key>:<signature>'")
    return auth
