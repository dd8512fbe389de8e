"""The first command source: strategy JSON files given with ``--strategies FILE_OR_FOLDER``.

Each file becomes a START_STRATEGY command through the bus, so it meets the same validation and
lifecycle as a strategy sent by the platform. A bad file is reported and skipped; the others start.

The files are read at every launch, but a launch is not a trader's order to trade again: a strategy
the store holds as stopped or paused, with the very definition its file still has, is left as it was
(a kill switch, a stop or a pause survives a restart). A file whose definition has changed since is a
new start. Two files of one folder with the same strategy id would replace each other: the second is
refused, naming the first.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from mt5console.core.commands.bus import Command, CommandBus, CommandResult
from mt5console.core.events import EventBus
from mt5console.core.store import Store, StrategyRecord, StrategyState

# States a trader put a strategy in, which a launch does not undo.
_HELD_STATES = (StrategyState.STOPPED, StrategyState.PAUSED)


def strategy_files(path: Path) -> list[Path]:
    if path.is_dir():
        return sorted(p for p in path.iterdir() if p.suffix.lower() == ".json" and p.is_file())
    return [path]


def _strategy_id(data: object) -> str | None:
    if isinstance(data, Mapping):
        found = data.get("strategyId")
        if isinstance(found, str) and found.strip():
            return found
    return None


def _held(data: Mapping[str, Any], record: StrategyRecord | None) -> str | None:
    """Why the strategy of ``data`` (stored as ``record``) is not started again (None: it is started)."""
    if record is None or record.state not in _HELD_STATES or record.definition != dict(data):
        return None
    was = f"{record.state.value}{f' ({record.state_reason})' if record.state_reason else ''}"
    if record.state is StrategyState.PAUSED:
        return f"stays paused, as it was left: {was}; p resumes it"
    return (
        f"is not started: it was {was} and its file has not changed since; "
        "to run it again, change its file or send START_STRATEGY"
    )


def _running_as_in(data: Mapping[str, Any], record: StrategyRecord | None) -> bool:
    """The strategy runs already (restored at start) from the very definition in its file: starting
    it again would only replace it by itself, and the log would say "replaced"."""
    return record is not None and record.state is StrategyState.RUNNING and record.definition == dict(data)


async def start_strategy_files(
    path: Path, bus: CommandBus, events: EventBus, store: Store | None = None
) -> list[CommandResult]:
    """START_STRATEGY for each file of ``path``; ``store``: where stopped and paused strategies are
    found (see the module docstring)."""
    results: list[CommandResult] = []
    first_file_of: dict[str, str] = {}
    files = strategy_files(path)
    if not files:
        events.warning("files", f"no strategy files (*.json) in {path}")
    for file in files:
        source = f"file {file.name}"
        try:
            # utf-8-sig: Windows editors may start the file with a byte-order mark, which `check` reads too
            data = json.loads(file.read_text(encoding="utf-8-sig"))
        except (OSError, UnicodeDecodeError) as error:
            events.error("files", f"cannot read {file}: {error}")
            results.append(CommandResult(ok=False, error=str(error)))
            continue
        except json.JSONDecodeError as error:
            message = f"{file}: invalid JSON at line {error.lineno}, column {error.colno}: {error.msg}"
            events.error("files", message)
            results.append(CommandResult(ok=False, error=message))
            continue
        strategy_id = _strategy_id(data)
        if strategy_id is not None:
            if strategy_id in first_file_of:
                message = (
                    f"{file}: strategy id {strategy_id!r} is already that of {first_file_of[strategy_id]}; "
                    "not started (one of them would replace the other)"
                )
                events.error("files", message)
                results.append(CommandResult(ok=False, error=message))
                continue
            first_file_of[strategy_id] = file.name
            record = None if store is None else store.get_strategy(strategy_id)
            if _running_as_in(data, record):
                events.info(strategy_id, f"runs as {file.name} says (restored at start)")
                results.append(CommandResult(ok=True, details={"strategyId": strategy_id}))
                continue
            held = _held(data, record)
            if held is not None:
                events.warning(strategy_id, f"{strategy_id} in {file.name} {held}")
                results.append(CommandResult(ok=False, error=held))
                continue
        results.append(await bus.submit(Command(name="START_STRATEGY", parameters=data, source=source)))
    return results
