"""The Pusher command source (see source.py): settings and channel auth, pysher mended, the source."""

from mt5console.core.commands.pusher.config import (
    AUTH_TIMEOUT,
    ChannelAuthError,
    PusherConfig,
    PusherConfigError,
    endpoint_auth,
    sign_subscription,
)
from mt5console.core.commands.pusher.source import (
    COMMAND_EVENT,
    SOURCE,
    Acknowledge,
    PusherSource,
    pusher_source,
)

__all__ = [
    "AUTH_TIMEOUT",
    "COMMAND_EVENT",
    "SOURCE",
    "Acknowledge",
    "ChannelAuthError",
    "PusherConfig",
    "PusherConfigError",
    "PusherSource",
    "endpoint_auth",
    "pusher_source",
    "sign_subscription",
]
