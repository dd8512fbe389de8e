"""What a user should hear about a simulated terminal's setup before trading on it.

- The feed's identity (the seed, the replayed bars), which the state file keeps: a restart on another
  feed values the saved open positions at other prices at once, and says so (engine.py).
- Replayed bars that all lie in the past (or all in the future): the symbol's market is closed
  outside its bars (every order gets 10018 Market closed, or there are no ticks yet), which without a
  word looks like a dead symbol.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from mt5console.core.broker.sim.replay import ReplayFeed


def _utc(epoch_ms: int, server_offset: int) -> str:
    """A time of the server's clock (``server_offset`` seconds ahead of UTC), written in UTC."""
    return datetime.fromtimestamp(epoch_ms / 1000 - server_offset, UTC).strftime("%Y-%m-%d %H:%M UTC")


def feed_identity(
    seed: int, replay: ReplayFeed | None, data: str | Path | np.ndarray | None, server_offset: int
) -> str:
    """The seed, and the replayed bars (their source, count, span and a digest of their content, so
    that a file edited under the same name counts as another feed)."""
    if replay is None:
        return f"seed {seed}"
    rates = replay.rates()
    digest = hashlib.sha256(rates.tobytes()).hexdigest()[:12]
    source = Path(data).name if isinstance(data, str | Path) else "rates given in memory"
    first, last = int(rates["time"][0]), int(rates["time"][-1])
    span = f"{_utc(first * 1000, server_offset)} to {_utc(last * 1000, server_offset)}"
    return (
        f"seed {seed} and {replay.spec.name} replayed from {source} "
        f"({len(rates)} {replay.frame.name} bars, {span}, sha256 {digest})"
    )


def replay_range_notices(replay: ReplayFeed | None, now_ms: int, server_offset: int) -> tuple[str, ...]:
    """A notice when now lies outside the replayed bars (a real-time replay only: a stepped one
    moves its own clock onto them)."""
    if replay is None or len(replay) == 0:
        return ()
    opens = replay.prices.open_ms
    first_ms, last_ms = int(opens[0]), int(opens[-1])
    end_ms = last_ms + replay.frame.seconds * 1000
    if first_ms <= now_ms < end_ms:
        return ()
    name = replay.spec.name
    after = now_ms >= end_ms
    consequence = (
        "orders on it get 10018 Market closed and its price stands at the last bar's close"
        if after
        else "it has no ticks yet and orders on it get 10018 Market closed"
    )
    return (
        f"{name}: the replayed bars run from {_utc(first_ms, server_offset)} (the first bar) to "
        f"{_utc(last_ms, server_offset)} (the last), and now ({_utc(now_ms, server_offset)}) is "
        f"{'after' if after else 'before'} them: {name}'s market is closed outside its bars, "
        f"so {consequence}; give bars that cover now, or backtest them with `mt5console replay`",
    )
