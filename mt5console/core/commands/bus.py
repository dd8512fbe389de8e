"""The command bus: one door for every command, whatever brought it (file, Pusher, platform, keys).

Each command is checked whole before anything happens: an unknown name, a malformed payload or a
repeated ``commandId`` is rejected with a reason and changes nothing. A command with an id is written
to the store (status ``received``) before it is acted on and its outcome after, so a repeated id is
refused even across restarts, its rejection saying how the first one ended.

A command a crash cut off (still ``received`` at the next start) is carried out again at start by
``resume_unfinished``, before any strategy trades: a kill switch half done must not leave strategies
trading, and the platform's retry under the same id is refused as a duplicate. Every command is safe
to do twice (stopping the stopped, closing the closed) but a partial CLOSE_POSITION, which cannot be
told done or not from the position: that one is rejected, saying so. Only the commands of the session
just ended are carried out: one cut off before an earlier session may be out of date (a START_STRATEGY
of a strategy stopped since, a CLOSE_ALL of positions opened since) and is rejected, saying so.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from mt5console.core.broker.errors import BrokerError, TerminalUnavailable
from mt5console.core.events import EventBus
from mt5console.core.store import CommandStatus, Store, StrategyState
from mt5console.core.strategy.engine import EngineError, StrategyEngine
from mt5console.core.strategy.model import StrategyError

log = logging.getLogger(__name__)

COMMANDS = (
    "START_STRATEGY",
    "STOP_STRATEGY",
    "PAUSE_STRATEGY",
    "RESUME_STRATEGY",
    "STOP_ALL",
    "CLOSE_POSITION",
    "CLOSE_ALL",
)


class CommandRejected(Exception):
    """A command that is refused before or while being carried out; the message says why."""


@dataclass(frozen=True, slots=True)
class Command:
    name: str
    parameters: Mapping[str, Any]
    source: str  # who sent it: "file <path>", "pusher", "platform", "keyboard"
    command_id: str | None = None


@dataclass(frozen=True, slots=True)
class CommandResult:
    ok: bool
    error: str = ""
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def status(self) -> str:
        return "ok" if self.ok else "rejected"


def parse_command(payload: object, source: str) -> Command:
    """A command from its wire shape ``{"command", "commandId", "parameters"}``."""
    if not isinstance(payload, Mapping):
        raise CommandRejected(f"a command must be a JSON object, not {type(payload).__name__}")
    unknown = sorted(set(payload) - {"command", "commandId", "parameters"})
    if unknown:
        raise CommandRejected(
            f"unknown field(s) {', '.join(unknown)} (expected command, commandId, parameters)"
        )
    name = payload.get("command")
    if not isinstance(name, str) or not name:
        raise CommandRejected("command: missing (expected one of " + ", ".join(COMMANDS) + ")")
    command_id = payload.get("commandId")
    if command_id is not None and (not isinstance(command_id, str | int) or isinstance(command_id, bool)):
        raise CommandRejected("commandId: must be a string")
    if command_id is not None and not str(command_id).strip():
        raise CommandRejected("commandId: must not be blank")
    parameters = payload.get("parameters", {})
    if parameters is None:
        parameters = {}
    if not isinstance(parameters, Mapping):
        raise CommandRejected("parameters: must be a JSON object")
    return Command(
        name=name,
        parameters=parameters,
        source=source,
        command_id=None if command_id is None else str(command_id),
    )


def _flag(parameters: Mapping[str, Any], key: str, default: bool = False) -> bool:
    value = parameters.get(key, default)
    if not isinstance(value, bool):
        raise CommandRejected(f"parameters.{key}: must be true or false, not {value!r}")
    return value


def _text(parameters: Mapping[str, Any], key: str) -> str:
    value = parameters.get(key)
    if not isinstance(value, str) or not value:
        raise CommandRejected(f"parameters.{key}: required (a non-empty string)")
    return value


def _ticket(parameters: Mapping[str, Any]) -> int:
    value = parameters.get("ticket")
    if value is None:
        raise CommandRejected("parameters.ticket: required (a position ticket number)")
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise CommandRejected(f"parameters.ticket: {value!r} is not a ticket number (a whole number)")
    try:
        ticket = int(value)
    except ValueError:
        raise CommandRejected(f"parameters.ticket: {value!r} is not a ticket number") from None
    if ticket <= 0:
        raise CommandRejected(f"parameters.ticket: {value!r} is not a ticket number")
    return ticket


def _volume(parameters: Mapping[str, Any]) -> float | None:
    value = parameters.get("volume")
    if value is None:
        return None
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not math.isfinite(value)
        or value <= 0
    ):
        raise CommandRejected(f"parameters.volume: must be a positive number of lots, not {value!r}")
    return float(value)


def _only(parameters: Mapping[str, Any], allowed: set[str]) -> None:
    unknown = sorted(set(parameters) - allowed)
    if unknown:
        raise CommandRejected(
            f"parameters: unknown field(s) {', '.join(unknown)}"
            f" (expected {', '.join(sorted(allowed)) or 'none'})"
        )


Handler = Callable[[Command], Awaitable[dict[str, Any]]]


class CommandBus:
    def __init__(self, engine: StrategyEngine, store: Store, events: EventBus) -> None:
        self._engine = engine
        self._store = store
        self._events = events
        self._handlers: dict[str, Handler] = {
            "START_STRATEGY": self._start,
            "STOP_STRATEGY": self._stop,
            "PAUSE_STRATEGY": self._pause,
            "RESUME_STRATEGY": self._resume,
            "STOP_ALL": self._stop_all,
            "CLOSE_POSITION": self._close_position,
            "CLOSE_ALL": self._close_all,
        }

    async def submit_payload(self, payload: object, source: str) -> tuple[Command | None, CommandResult]:
        """Parse a wire payload and handle it; a malformed one is rejected and logged."""
        try:
            command = parse_command(payload, source)
        except CommandRejected as error:
            self._events.warning("commands", f"rejected a malformed command from {source}: {error}")
            return None, CommandResult(ok=False, error=str(error))
        return command, await self.submit(command)

    async def submit(self, command: Command) -> CommandResult:
        label = f"{command.name}" + (f" [{command.command_id}]" if command.command_id else "")
        handler = self._handlers.get(command.name)
        if handler is None:
            return self._rejected(  # not recorded yet: there is no status to set
                label,
                command,
                f"unknown command {command.name!r} (expected one of {', '.join(COMMANDS)})",
                record=False,
            )
        if command.command_id is not None:
            fresh = self._store.record_command(command.command_id, command.name, dict(command.parameters))
            if not fresh:
                return self._rejected(label, command, self._duplicate(command.command_id), record=False)
        return await self._carry_out(label, command, handler)

    async def _carry_out(self, label: str, command: Command, handler: Handler) -> CommandResult:
        try:
            details = await handler(command)
        except (CommandRejected, StrategyError, EngineError, BrokerError) as error:
            return self._rejected(label, command, str(error))
        if command.command_id is not None:
            self._store.set_command_status(command.command_id, CommandStatus.OK)
        self._events.info("commands", f"{label} from {command.source}: ok")
        return CommandResult(ok=True, details=details)

    def _duplicate(self, command_id: str) -> str:
        """Why a repeated id is refused, with how the first one ended (the platform may keep only the
        last acknowledgement of an id: it must not read as if the first had failed)."""
        previous = self._store.get_command(command_id)
        if previous is None:
            return f"duplicate commandId {command_id!r}"
        outcome = {
            CommandStatus.OK: "it was carried out (ok)",
            CommandStatus.REJECTED: f"it was rejected: {previous.error}",
            CommandStatus.RECEIVED: "it is still being carried out",
        }[previous.status]
        return (
            f"duplicate commandId {command_id!r} (first seen {previous.time:%Y-%m-%d %H:%M:%S} UTC; "
            f"{outcome}); not carried out again"
        )

    def _stopped_already(self, parameters: Mapping[str, Any]) -> bool:
        strategy_id = parameters.get("strategyId")
        if not isinstance(strategy_id, str) or strategy_id in self._engine.runners:
            return False
        record = self._store.get_strategy(strategy_id)
        return record is not None and record.state is StrategyState.STOPPED

    async def _finish_stop(self, command: Command) -> dict[str, Any]:
        """A STOP_STRATEGY cut off after the strategy was stopped: close its positions if asked."""
        _only(command.parameters, {"strategyId", "closePositions"})
        strategy_id = _text(command.parameters, "strategyId")
        closed = 0
        if _flag(command.parameters, "closePositions"):
            closed = await self._engine.close_positions_of(strategy_id, by=command.source)
        return {"strategyId": strategy_id, "closedPositions": closed}

    def _finish_stop_all(self, received: datetime) -> Handler:
        """A STOP_ALL cut off: stop what runs again, and close the positions also of the strategies
        it had stopped before the crash (stopped since it was received), when it was asked to."""

        async def finish(command: Command) -> dict[str, Any]:
            running = set(self._engine.runners)  # these the stop closes itself
            details = await self._stop_all(command)
            if _flag(command.parameters, "closePositions"):
                for record in self._store.list_strategies(StrategyState.STOPPED):
                    if record.updated_at >= received and record.id not in running:
                        details["closedPositions"] += await self._engine.close_positions_of(
                            record.id, by=command.source
                        )
            return details

        return finish

    async def resume_unfinished(self, last_session: datetime | None) -> list[tuple[str, CommandResult]]:
        """Settle the commands the last run was cut off in (see the module's docstring); returns each
        id with its outcome, to acknowledge. ``last_session``: when the session just ended started
        (``Store.session_started``; None: unknown). Call at start, before the market data loop runs."""
        settled: list[tuple[str, CommandResult]] = []
        for record in self._store.unfinished_commands():
            command = Command(record.name, record.payload, "a restart", record.id)
            label = f"{command.name} [{record.id}]"
            if last_session is None or record.time < last_session:
                since = (
                    "the console has run since"
                    if last_session
                    else "whether the console ran since is unknown"
                )
                reason = (
                    f"cut off by a stop in an earlier session (received {record.time:%Y-%m-%d %H:%M:%S} UTC; "
                    f"{since}): not carried out now, as it may be out of date; send it again under a new "
                    "commandId if it still stands"
                )
                settled.append((record.id, self._rejected(label, command, reason)))
                continue
            self._events.warning(
                "commands",
                f"{label}, received {record.time:%Y-%m-%d %H:%M:%S} UTC, was cut off by the last stop "
                "before it finished: carrying it out now",
            )
            handler = self._handlers.get(command.name)
            if handler is None:
                result = self._rejected(label, command, f"unknown command {command.name!r}")
            elif command.name == "STOP_STRATEGY" and self._stopped_already(record.payload):
                result = await self._carry_out(label, command, self._finish_stop)
            elif command.name == "STOP_ALL":
                result = await self._carry_out(label, command, self._finish_stop_all(record.time))
            elif command.name == "CLOSE_POSITION" and record.payload.get("volume") is not None:
                result = self._rejected(
                    label,
                    command,
                    "cut off by a restart: whether part of the position was closed cannot be told; "
                    "check the position and send it again under a new commandId",
                )
            else:
                result = await self._carry_out(label, command, handler)
            settled.append((record.id, result))
        return settled

    def _rejected(self, label: str, command: Command, reason: str, *, record: bool = True) -> CommandResult:
        if record and command.command_id is not None:
            self._store.set_command_status(command.command_id, CommandStatus.REJECTED, reason)
        self._events.warning("commands", f"{label} from {command.source} rejected: {reason}")
        return CommandResult(ok=False, error=reason)

    # ----------------------------------------------------------------- handlers

    async def _start(self, command: Command) -> dict[str, Any]:
        strategy = await self._engine.start(command.parameters, source=command.source)
        return {"strategyId": strategy.strategy_id}

    async def _stop(self, command: Command) -> dict[str, Any]:
        _only(command.parameters, {"strategyId", "closePositions"})
        strategy_id = _text(command.parameters, "strategyId")
        close = _flag(command.parameters, "closePositions")
        closed = await self._engine.stop(strategy_id, close_positions=close, by=command.source)
        return {"strategyId": strategy_id, "closedPositions": closed}

    async def _pause(self, command: Command) -> dict[str, Any]:
        _only(command.parameters, {"strategyId"})
        strategy_id = _text(command.parameters, "strategyId")
        self._engine.pause(strategy_id, by=command.source)
        return {"strategyId": strategy_id}

    async def _resume(self, command: Command) -> dict[str, Any]:
        _only(command.parameters, {"strategyId"})
        strategy_id = _text(command.parameters, "strategyId")
        self._engine.resume(strategy_id, by=command.source)
        return {"strategyId": strategy_id}

    async def _stop_all(self, command: Command) -> dict[str, Any]:
        _only(command.parameters, {"closePositions"})
        close = _flag(command.parameters, "closePositions")
        closed = await self._engine.stop_all(close_positions=close, by=command.source)
        return {"closedPositions": closed}

    async def _close_position(self, command: Command) -> dict[str, Any]:
        _only(command.parameters, {"ticket", "volume"})
        ticket = _ticket(command.parameters)
        volume = _volume(command.parameters)
        await self._engine.close_position(ticket, volume=volume, by=command.source)
        await self._book_closes()
        return {"ticket": ticket}

    async def _close_all(self, command: Command) -> dict[str, Any]:
        _only(command.parameters, {"symbol"})
        symbol = command.parameters.get("symbol")
        if symbol is not None and (not isinstance(symbol, str) or not symbol):
            raise CommandRejected(f"parameters.symbol: must be a symbol name, not {symbol!r}")
        if symbol is not None:
            await self._known_symbol(symbol)
        closed = await self._engine.close_all(symbol=symbol, by=command.source)
        await self._book_closes()
        return {"closedPositions": closed}

    async def _book_closes(self) -> None:
        """Have the trade tracker book the closes now, not when the market-data poll next sees the
        positions change (a position opened and closed between two polls it never would). The closes
        are done whatever this meets: a failure is logged, and the next change of positions books them."""
        try:
            await self._engine.tracker.sync_now()
        except Exception as error:
            log.exception("booking the closes failed")
            self._events.warning("commands", f"the close is done, but booking it failed: {error}")

    async def _known_symbol(self, symbol: str) -> None:
        """CommandRejected when the terminal has no ``symbol``: a misspelt name would otherwise close
        nothing and be acknowledged ok, as if its positions were closed."""
        try:
            await self._engine.tracker.broker.symbol(symbol)
        except TerminalUnavailable:
            raise  # the terminal is away, not the symbol: its own message says so
        except BrokerError as error:
            raise CommandRejected(
                f"parameters.symbol: the terminal has no symbol {symbol!r} ({error}); nothing was closed"
            ) from None
