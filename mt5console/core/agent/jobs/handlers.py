"""What each job type does, through the same broker adapter and local hard limits as the engine.

Each handler returns the job's output_data (INTERFACE.md, "Jobs") or raises: ``JobFailure`` (and
the compile / EA-control / broker errors) with a reason a person can act on. ``resumed`` is set when
the job was cut off mid-run by a crash: trade and close_position then look for the job's deals in the
terminal's history before sending anything (trade_recovery.py); the other jobs are safe to repeat.

A trade job's fill, and a close_position job's close, reach the trade tracker over the event bus
(fills.py) before the handler returns, so before the executor stores the job's result: the trades
table and the platform's trade events never miss a position a job opened, however soon it closed.
run and stop fail at once on the simulated terminal, which has no charts for an EA.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

import numpy as np

from mt5console.core.agent.ea_control import EAControl
from mt5console.core.agent.jobs.fills import (
    JobChangedPositions,
    JobFilled,
    filled_by,
    opened_by,
    publish_and_follow,
)
from mt5console.core.agent.jobs.model import (
    ClosePositionJob,
    CompileJob,
    DeployJob,
    GetAccountJob,
    GetCandlesJob,
    GetPositionsJob,
    Job,
    RunJob,
    StopJob,
    TradeJob,
)
from mt5console.core.agent.jobs.trade_recovery import (
    close_output,
    deals_with_comment,
    fill_output,
    order_comment,
    trade_output,
)
from mt5console.core.agent.metaeditor import Compiler, FetchArtifact
from mt5console.core.agent.terminal_files import TerminalFolders
from mt5console.core.broker.errors import BrokerError, TerminalUnavailable
from mt5console.core.broker.models import Position, SymbolSpec
from mt5console.core.broker.mt5 import Broker
from mt5console.core.broker.volume import VolumeError, fit_volume
from mt5console.core.events import EventBus
from mt5console.core.limits import LimitGuard
from mt5console.core.settings import Settings

SOURCE = "jobs"
# The job types that ask the terminal (or the controller EA inside it); compile and deploy only
# work on files and run while the terminal is away.
TERMINAL_JOBS = (TradeJob, ClosePositionJob, GetPositionsJob, GetAccountJob, GetCandlesJob, RunJob, StopJob)
# How long a job that answers or judges the terminal's times (candles, the daily loss limit's day)
# waits while the trade server's clock is a bare guess (ServerClock.guessed): in an open market one or two
# market-data polls teach it.
CLOCK_WAIT: Final = 10.0
CLOCK_LOOK_EVERY: Final = 0.1


class JobFailure(Exception):
    """A job that cannot be carried out; the message is its error_message."""


def checked_volume(volume: float, spec: SymbolSpec) -> float:
    """``volume`` when the symbol can trade exactly that much; a remote job is never resized."""
    try:
        fitted = fit_volume(volume, spec)
    except VolumeError as error:
        raise JobFailure(str(error)) from None
    if fitted.clamped_to_max:
        raise JobFailure(f"{volume:g} lots is above {spec.name}'s maximum {spec.volume_max:g}")
    if not math.isclose(fitted.volume, volume, rel_tol=1e-9, abs_tol=1e-12):
        raise JobFailure(
            f"{volume:g} lots is not a multiple of {spec.name}'s volume step {spec.volume_step:g}"
            f" (nearest below: {fitted.volume:g})"
        )
    return fitted.volume


def position_output(position: Position) -> dict[str, Any]:
    return {
        "ticket": position.ticket,
        "symbol": position.symbol,
        "type": position.side.value,
        "volume": position.volume,
        "open_price": position.price_open,
        "current_price": position.price_current,
        "sl": position.sl,
        "tp": position.tp,
        "profit": position.profit,
    }


def candle_output(rates: np.ndarray) -> list[dict[str, Any]]:
    return [
        {
            "time": datetime.fromtimestamp(int(bar["time"]), UTC).isoformat(),
            "open": float(bar["open"]),
            "high": float(bar["high"]),
            "low": float(bar["low"]),
            "close": float(bar["close"]),
            "volume": int(bar["tick_volume"]),
        }
        for bar in rates
    ]


class JobHandlers:
    def __init__(
        self,
        broker: Broker,
        guard: LimitGuard,
        *,
        compiler: Compiler | None = None,
        ea_control: EAControl | None = None,
        events: EventBus | None = None,
        wine_prefix: Path | None = None,
        strategy_of_magic: Callable[[int], str | None] | None = None,
        clock_wait: float = CLOCK_WAIT,
    ) -> None:
        self._broker = broker
        self._clock_wait = clock_wait
        self._guard = guard
        # A trade under a strategy's magic number would be counted against its maxPositions, closed
        # by its exits and reported as its trade: a job may not borrow one.
        self._strategy_of_magic = strategy_of_magic
        self.compiler = compiler or Compiler()
        self.ea_control = ea_control or EAControl()
        self._events = events or EventBus()
        self._wine_prefix = wine_prefix

    async def handle(self, job_id: str, job: Job, *, received_at: datetime, resumed: bool) -> dict[str, Any]:
        if isinstance(job, TERMINAL_JOBS) and not self._broker.connected:
            # Fail at once with the reason, rather than wait on a terminal that is being reconnected.
            raise TerminalUnavailable(
                f"the terminal is not connected; reconnecting every {self._broker.reconnect_interval:g} s"
            )
        match job:
            case TradeJob():
                return await self.trade(job_id, job, received_at=received_at, resumed=resumed)
            case ClosePositionJob():
                return await self.close_position(job_id, job, resumed=resumed)
            case GetPositionsJob():
                positions = await self._broker.positions(symbol=job.symbol)
                return {"positions": [position_output(p) for p in positions]}
            case GetAccountJob():
                return await self.account()
            case GetCandlesJob():
                return await self.candles(job)
            case CompileJob():
                result = await self.compiler.compile(
                    await self.folders(), job.ea_name, source=job.source, version_id=job.version_id
                )
                return result.output()
            case DeployJob():
                return self.ea_control.deploy(await self.folders(), job.ea_name, job.ex5_path)
            case RunJob() | StopJob() if self._broker.simulated:
                raise JobFailure(
                    f"{'run' if isinstance(job, RunJob) else 'stop'}: the simulated terminal (--broker sim) "
                    "has no charts to run an EA on; run and stop need a real MetaTrader 5 terminal "
                    "(--broker mt5 or mt5linux) with the MT5ConsoleController EA attached to a chart"
                )
            case RunJob():
                return await self.ea_control.run(
                    await self.folders(), job.ea_name, job.symbol, job.timeframe, job.inputs
                )
            case StopJob():
                return await self.ea_control.stop(await self.folders(), job.ea_name, job.symbol)

    async def folders(self) -> TerminalFolders:
        terminal = self._broker.terminal or await self._broker.terminal_state()
        return TerminalFolders.of(terminal, prefix=self._wine_prefix)

    async def _spec(self, symbol: str) -> SymbolSpec:
        try:
            return await self._broker.symbol(symbol)
        except TerminalUnavailable:
            raise  # the terminal is away, not the symbol: its own message says so
        except BrokerError as error:
            raise JobFailure(f"the terminal has no symbol {symbol!r}: {error}") from None

    # ----------------------------------------------------------------- trading

    async def trade(
        self, job_id: str, job: TradeJob, *, received_at: datetime, resumed: bool
    ) -> dict[str, Any]:
        comment = order_comment(job_id, job.comment)
        owner = self._strategy_of_magic(job.magic) if job.magic and self._strategy_of_magic else None
        if owner is not None:
            raise JobFailure(
                f"magic {job.magic} is the console strategy {owner!r}'s: a job may not trade under a "
                "strategy's magic number (its positions would count and be managed as the strategy's)"
            )
        spec = await self._spec(job.symbol)
        if self._guard.limits.max_daily_loss_pct is not None:
            # Its day starts at 00:00 UTC, found from the tick's time: with a guessed clock that is
            # the server's midnight, and a loss of the server's night would count, or today's not.
            await self._server_clock_confirmed("the day of --max-daily-loss-pct", job.symbol)
        tick = await self._broker.tick(job.symbol)
        if resumed:
            # Deal times are the terminal's clock: look back as far as the job is old, from its now.
            since = tick.time - (datetime.now(UTC) - received_at)
            found = await deals_with_comment(self._broker, comment, since, tick.time)
            if found:
                self._events.warning(
                    SOURCE,
                    f"job {job_id} was cut off after its order reached the terminal: deal "
                    f"{found[0].ticket} ({comment!r}) is its result; nothing is sent again",
                )
                self._filled(job_id, job, comment, opened_by(found, job, comment))
                # Its position may have closed while the console was off: the tracker looks now.
                await self._changed(job_id, found[0].position_id)
                return trade_output(found)
            # A terminal that has just restarted may still be loading its deal history, while its
            # open positions are there at once: a position carrying the comment is the job's fill.
            holding = [p for p in await self._broker.positions(symbol=job.symbol) if p.comment == comment]
            if holding:
                position = holding[0]
                self._events.warning(
                    SOURCE,
                    f"job {job_id} was cut off after its order reached the terminal: open position "
                    f"#{position.ticket} ({comment!r}) is its result; nothing is sent again",
                )
                self._filled(job_id, job, comment, position)
                return fill_output(position.price_open, position.identifier, position.ticket)
        volume = checked_volume(job.volume, spec)
        refusal = await self._guard.refusal(volume, await self._broker.positions(), tick.time)
        if refusal is not None:
            raise JobFailure(f"refused by the console's limits: {refusal}")
        result = await self._broker.open_market(
            job.symbol,
            job.side,
            volume,
            sl=job.sl,
            tp=job.tp,
            magic=job.magic,
            comment=comment,
            deviation=job.deviation,
        )
        # The deal's price is the fill; some execution modes leave the result's price at 0.
        deals = await deals_with_comment(
            self._broker, comment, tick.time, tick.time, position=result.position
        )
        if deals:
            self._filled(job_id, job, comment, opened_by(deals, job, comment))
            return trade_output(deals)
        self._filled(job_id, job, comment, filled_by(result, job, comment, tick.time))
        return fill_output(result.price, result.order, result.position)

    def _filled(self, job_id: str, job: TradeJob, comment: str, position: Position) -> None:
        """Hand the job's fill to the trade tracker (fills.py), before the job's result is stored: a
        position closed before the next market-data poll is then still in the trades table and
        reported opened and closed. A fill without its ticket or price cannot be written down: the
        tracker adopts the position at its next look, if it is still open."""
        if position.ticket < 1 or position.price_open <= 0:
            self._events.warning(
                SOURCE,
                f"job {job_id}: the terminal did not say the fill's position or price ({comment!r}); "
                f"its {job.symbol} position is recorded when the console next sees it open",
            )
            return
        self._events.publish(JobFilled(job_id=job_id, position=position))

    async def _changed(self, job_id: str, ticket: int) -> None:
        """Have the trade tracker read the positions now (fills.py, JobChangedPositions)."""
        await publish_and_follow(self._events, JobChangedPositions(job_id=job_id, ticket=ticket))

    async def close_position(self, job_id: str, job: ClosePositionJob, *, resumed: bool) -> dict[str, Any]:
        comment = order_comment(job_id)
        now = datetime.now(UTC)
        if resumed:
            found = await deals_with_comment(self._broker, comment, now, now, position=job.ticket)
            if found:
                self._events.warning(
                    SOURCE,
                    f"job {job_id} was cut off after its close reached the terminal: deal "
                    f"{found[0].ticket} is its result; nothing is sent again",
                )
                await self._changed(job_id, job.ticket)
                return close_output(found)
        open_now = await self._broker.positions(ticket=job.ticket)
        if not open_now:
            raise JobFailure(f"position {job.ticket} is not open (already closed, or another account's?)")
        position = open_now[0]
        volume = None
        if job.volume is not None:
            if job.volume > position.volume + 1e-9:
                raise JobFailure(
                    f"cannot close {job.volume:g} lots of position {job.ticket}: it holds {position.volume:g}"
                )
            volume = checked_volume(job.volume, await self._spec(position.symbol))
        result = await self._broker.close_position(job.ticket, volume=volume, comment=comment)
        deals = await deals_with_comment(self._broker, comment, now, now, position=job.ticket)
        # The tracker reads the close now: the market-data poll may never see the position change.
        await self._changed(job_id, job.ticket)
        if deals:
            return close_output(deals)
        self._events.warning(SOURCE, f"job {job_id}: the closing deal is not in the history yet; pnl unknown")
        return {"closed_price": result.price, "pnl": None}

    # ----------------------------------------------------------------- reading

    async def account(self) -> dict[str, Any]:
        account = await self._broker.account()
        return {
            "balance": account.balance,
            "equity": account.equity,
            "margin_used": account.margin,
            "margin_available": account.margin_free,
            "currency": account.currency,
            "leverage": account.leverage,
        }

    async def candles(self, job: GetCandlesJob) -> dict[str, Any]:
        await self._spec(job.symbol)
        await self._server_clock_confirmed("the candles' times", job.symbol)
        rates = await self._broker.rates(job.symbol, job.timeframe, job.count)
        return {"candles": candle_output(rates)}

    async def _server_clock_confirmed(self, what: str, symbol: str) -> None:
        """Wait (up to ``clock_wait`` seconds) while the trade server's clock is a bare guess (a first
        start before any live tick, ServerClock.guessed): times converted with it are hours off on most
        brokers. A configured or remembered offset is used at once. Meanwhile ``symbol``'s tick is
        read again and again: a live one, moving between reads moments apart, teaches the clock even
        when the market data tracks no open market (FX closed, the job's crypto trading).
        JobFailure naming ``what`` when the wait ends without it."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._clock_wait
        while (clock := self._broker.server_clock).guessed:
            if loop.time() >= deadline:
                raise JobFailure(
                    f"{what} would be hours off: no live tick has shown the trade server's clock yet "
                    f"({clock.describe()}); try again while the market is open, or start the console "
                    "with --server-utc-offset"
                )
            await self._broker.tick(symbol)
            await asyncio.sleep(CLOCK_LOOK_EVERY)


def build_handlers(
    settings: Settings,
    broker: Broker,
    *,
    events: EventBus,
    fetch_artifact: FetchArtifact | None = None,
    strategy_of_magic: Callable[[int], str | None] | None = None,
) -> JobHandlers:
    """The handlers as the runtime wires them: the engine's limits, MetaEditor and controller settings."""
    compiler = Compiler(
        metaeditor_path=settings.metaeditor_path,
        timeout=settings.compile_timeout,
        max_source_bytes=settings.artifact_max_bytes,
        fetch_artifact=fetch_artifact,
    )
    return JobHandlers(
        broker,
        LimitGuard(broker, settings.limits),
        compiler=compiler,
        ea_control=EAControl(answer_timeout=settings.ea_answer_timeout),
        events=events,
        strategy_of_magic=strategy_of_magic,
    )
