"""deploy / run / stop jobs: EAs on charts through the MT5ConsoleController EA.

The MetaTrader5 Python API cannot attach an EA to a chart, so the console ships an MQL5 controller
EA (``mt5console/mql5/MT5ConsoleController.mq5``) that the user attaches to one chart once. The
console and the controller talk through files in the terminal's common Files folder
(``<common>/Files/MT5Console/``), which both can reach:

- the console writes ``<id>.cmd`` (written as ``<id>.cmd.tmp`` and renamed, so the controller never
  reads half a command): UTF-8 ``key=value`` lines, CRLF: ``id``, ``action`` (run | stop), ``ea``,
  ``symbol``, ``timeframe``, ``period`` (the ENUM_TIMEFRAMES value), ``template`` (for run), and
  ``data_path``, the terminal's data folder, so that a controller in another terminal of the same
  user (they share the common folder) leaves the command alone;
- the controller deletes the command, acts, and writes ``<id>.ans``: ``id``, ``status`` (ok | error),
  ``message``, ``chart``;
- the console waits for the answer up to ``answer_timeout`` seconds. With no answer it takes its
  command back and says whether no controller took it (none attached, or Algo Trading off) or one
  took it and did not answer.

run writes the chart template (``chart_template.py``) with the EA's inputs before the command; the
controller opens a chart of the symbol and period, applies the template and answers once the EA is
running on it. stop closes the charts that run the EA (of one symbol, when given).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from mt5console.core.agent.chart_template import InputValue, template_reference, write_template
from mt5console.core.agent.terminal_files import TerminalFolders, check_ea_name, local_path
from mt5console.core.timeframes import timeframe_value

CONTROLLER_NAME: Final = "MT5ConsoleController"
# The controller's source in the installed package (mt5console/mql5/), for the one-time setup.
CONTROLLER_SOURCE: Final = Path(__file__).resolve().parents[2] / "mql5" / f"{CONTROLLER_NAME}.mq5"
COMMAND_SUFFIX: Final = ".cmd"
ANSWER_SUFFIX: Final = ".ans"


class EAControlError(Exception):
    """A deploy, run or stop that could not be carried out; the message says why and what to do."""


class ControllerTimeout(EAControlError):
    """No answer from the controller EA in time."""


@dataclass(frozen=True, slots=True)
class ControllerAnswer:
    command_id: str
    ok: bool
    message: str
    fields: dict[str, str]


def encode_fields(fields: Mapping[str, str]) -> bytes:
    for key, value in fields.items():
        if "\n" in value or "\r" in value or "=" in key:
            raise EAControlError(f"command field {key!r} must be one line without '=' in its name")
    return "".join(f"{key}={value}\r\n" for key, value in fields.items()).encode("utf-8")


def decode_fields(data: bytes) -> dict[str, str]:
    text = data.decode("utf-8-sig", errors="replace")
    fields: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if sep:
            fields[key.strip()] = value.strip()
    return fields


class EAControl:
    def __init__(self, *, answer_timeout: float = 30.0, poll_interval: float = 0.2) -> None:
        self.answer_timeout = answer_timeout
        self.poll_interval = poll_interval

    # ----------------------------------------------------------------- deploy

    def deploy(self, folders: TerminalFolders, ea_name: str, ex5_path: str | None = None) -> dict[str, Any]:
        """Put ``<ea_name>.ex5`` into ``MQL5/Experts/MT5Console``: from ``ex5_path`` when given, else
        the one a compile job built there."""
        target = folders.ex5_file(ea_name)
        if ex5_path is None:
            if not target.is_file():
                raise EAControlError(
                    f"{target.name} is not in {folders.experts}: send a compile job first, or give ex5_path"
                )
            return {"deployed": True, "path": str(target)}
        source = local_path(ex5_path)
        if source.suffix.lower() != ".ex5":
            raise EAControlError(f"ex5_path {ex5_path!r} is not an .ex5 file")
        if not source.is_file():
            raise EAControlError(f"ex5_path {ex5_path!r} does not exist on this machine ({source})")
        if target.exists() and source.samefile(target):
            return {"deployed": True, "path": str(target)}
        partial = target.with_name(target.name + ".part")
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, partial)
            os.replace(partial, target)  # a running terminal never sees half an .ex5
        except OSError as error:
            partial.unlink(missing_ok=True)
            raise EAControlError(f"cannot copy {source} to {target}: {error}") from None
        return {"deployed": True, "path": str(target)}

    # ----------------------------------------------------------------- run / stop

    async def run(
        self,
        folders: TerminalFolders,
        ea_name: str,
        symbol: str,
        timeframe: str,
        inputs: Mapping[str, InputValue] | None = None,
    ) -> dict[str, Any]:
        name = check_ea_name(ea_name)
        if not folders.ex5_file(name).is_file():
            raise EAControlError(
                f"{name} is not deployed ({folders.ex5_file(name)} is missing): "
                "send a compile or deploy job first"
            )
        try:
            write_template(folders, name, inputs)
        except OSError as error:
            raise EAControlError(f"cannot write the chart template for {name}: {error}") from None
        answer = await self.command(
            folders,
            {
                "action": "run",
                "ea": name,
                "symbol": symbol,
                "timeframe": timeframe,
                "period": str(timeframe_value(timeframe)),
                "template": template_reference(name),
            },
        )
        if not answer.ok:
            raise EAControlError(
                f"the controller could not start {name} on {symbol} {timeframe}: {answer.message}"
            )
        return {"running": True}

    async def stop(self, folders: TerminalFolders, ea_name: str, symbol: str | None = None) -> dict[str, Any]:
        name = check_ea_name(ea_name)
        answer = await self.command(folders, {"action": "stop", "ea": name, "symbol": symbol or ""})
        if not answer.ok:
            where = f" on {symbol}" if symbol else ""
            raise EAControlError(f"the controller could not stop {name}{where}: {answer.message}")
        return {"stopped": True}

    # ----------------------------------------------------------------- the files

    async def command(self, folders: TerminalFolders, fields: Mapping[str, str]) -> ControllerAnswer:
        """Write one command and wait for its answer (see the module docstring)."""
        command_id = uuid.uuid4().hex
        command_file = folders.control / f"{command_id}{COMMAND_SUFFIX}"
        answer_file = folders.control / f"{command_id}{ANSWER_SUFFIX}"
        body = encode_fields({"id": command_id, **fields, "data_path": folders.reported_data_path})
        try:
            _write_atomically(command_file, body)
        except OSError as error:
            raise EAControlError(f"cannot write the controller command to {command_file}: {error}") from None
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.answer_timeout
        try:
            while True:
                answer = _take_answer(answer_file)
                if answer is not None:
                    return _answer(command_id, answer)
                if loop.time() >= deadline:
                    break
                await asyncio.sleep(self.poll_interval)
        except asyncio.CancelledError:
            # The console stops: take back a command no controller took yet, lest one attached later
            # carry out a job whose result nobody waits for (the job is resumed at the next start).
            _withdraw(command_file)
            raise
        if _withdraw(command_file):
            raise ControllerTimeout(
                f"no {CONTROLLER_NAME} answered within {self.answer_timeout:g} s: attach the "
                f"{CONTROLLER_NAME} EA to a chart in the terminal, with Algo Trading allowed "
                "(one-time setup, see the README)"
            )
        raise ControllerTimeout(
            f"the {CONTROLLER_NAME} EA took the command but gave no answer within {self.answer_timeout:g} s; "
            "see the terminal's Experts journal"
        )


def _write_atomically(path: Path, body: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".tmp")
    partial.write_bytes(body)
    os.replace(partial, path)


def _take_answer(path: Path) -> dict[str, str] | None:
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None
    with contextlib.suppress(OSError):
        path.unlink()
    return decode_fields(data)


def _withdraw(command_file: Path) -> bool:
    """Remove an unanswered command; True when it was still there (no controller ever took it)."""
    try:
        command_file.unlink()
    except FileNotFoundError:
        return False
    return True


def _answer(command_id: str, fields: dict[str, str]) -> ControllerAnswer:
    if fields.get("id") != command_id:
        raise EAControlError(f"the controller's answer names command {fields.get('id')!r}, not {command_id}")
    status = fields.get("status", "")
    if status not in ("ok", "error"):
        raise EAControlError(f"the controller's answer has status {status!r}, not ok or error")
    return ControllerAnswer(command_id, status == "ok", fields.get("message", ""), fields)
