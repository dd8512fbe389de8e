"""The first command source: strategy JSON files given with ``--strategies FILE_OR_FOLDER``.

Each file becomes a START_STRATEGY command through the bus, so it meets the same validation and
lifecycle as a strategy sent by the platform. A bad file is reported and skipped; the others start.
"""

from __future__ import annotations

import json
from pathlib import Path

from mt5console.core.commands.bus import Command, CommandBus, CommandResult
from mt5console.core.events import EventBus


def strategy_files(path: Path) -> list[Path]:
    if path.is_dir():
        return sorted(p for p in path.iterdir() if p.suffix.lower() == ".json" and p.is_file())
    return [path]


async def start_strategy_files(path: Path, bus: CommandBus, events: EventBus) -> list[CommandResult]:
    results: list[CommandResult] = []
    files = strategy_files(path)
    if not files:
        events.warning("files", f"no strategy files (*.json) in {path}")
    for file in files:
        source = f"file {file.name}"
        try:
            data = json.loads(file.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError) as error:
            events.error("files", f"cannot read {file}: {error}")
            results.append(CommandResult(ok=False, error=str(error)))
            continue
        except json.JSONDecodeError as error:
            message = f"{file}: invalid JSON at line {error.lineno}, column {error.colno}: {error.msg}"
            events.error("files", message)
            results.append(CommandResult(ok=False, error=message))
            continue
        results.append(await bus.submit(Command(name="START_STRATEGY", parameters=data, source=source)))
    return results
