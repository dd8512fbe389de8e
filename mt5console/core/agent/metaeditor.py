"""The compile job: an EA's source into ``MQL5/Experts/MT5Console/<ea_name>.mq5``, compiled by MetaEditor.

MetaEditor is run as ``metaeditor64.exe /compile:<file> /log:<log>`` (under ``wine`` when it is a
Windows program and this is not Windows), awaited with a timeout and killed when it overruns. On
Windows it gets its command line as every known caller writes it, ``/compile:"C:\\...\\Grid.mq5"``,
quotes after the colon; the form an argument list becomes (``"/compile:C:\\...\\Grid.mq5"``, quote
first) is reported to make it exit without compiling when a path has a space. MetaEditor's
exit code means nothing reliable, so the outcome is read from the log it writes: UTF-16 LE with a BOM,
one line per message, ending in a ``Result:`` line::

    C:\\...\\Experts\\MT5Console\\Grid.mq5 : information: compiling 'Grid.mq5'
    C:\\...\\Experts\\MT5Console\\Grid.mq5(42,7) : error 256: 'lots' - undeclared identifier
    C:\\...\\Experts\\MT5Console\\Grid.mq5(57,12) : warning 43: possible loss of data due to type conversion
    Result: 1 errors, 1 warnings, 187 msec elapsed, cpu='X64 Regular'

A source with errors is a compile that worked and found them (``compiled: false`` with the errors);
a MetaEditor that cannot be started, overruns or writes no result is a ``CompileError``.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import subprocess
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path, PurePath, PureWindowsPath
from typing import Any, Final

from mt5console.core.agent.terminal_files import TerminalFolders, check_ea_name, local_path, wine_path

# Fetches an EA version's source (GET /ea/versions/{id}/artifacts, then its signed URL); injected so
# that this module does not depend on the platform client.
FetchArtifact = Callable[[str], Awaitable[str]]

UTF16_LE_BOM: Final = b"\xff\xfe"
UTF8_BOM: Final = b"\xef\xbb\xbf"
STDERR_SHOWN: Final = 500  # characters of MetaEditor's stderr quoted in an error

_MESSAGE = re.compile(
    r"^(?P<file>.+?)(?:\((?P<line>\d+),(?P<column>\d+)\))?\s+:\s+"
    r"(?P<kind>error|warning)(?:\s+(?P<code>\d+))?:\s*(?P<message>.*)$",
    re.IGNORECASE,
)
_RESULT = re.compile(
    r"^\s*Result:\s*(?P<errors>\d+)\s+errors?,\s*(?P<warnings>\d+)\s+warnings?", re.IGNORECASE
)


class CompileError(Exception):
    """The compile could not be carried out (not: the source has errors); the message says why."""


@dataclass(frozen=True, slots=True)
class CompileMessage:
    file: str  # the file's name as MetaEditor wrote it, without its folder
    line: int  # 0 when MetaEditor gave no position
    column: int
    code: int  # 0 when MetaEditor gave no code
    message: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "file": self.file,
            "line": self.line,
            "column": self.column,
            "code": self.code,
            "message": self.message,
        }


@dataclass(frozen=True, slots=True)
class CompileLog:
    errors: tuple[CompileMessage, ...]
    warnings: tuple[CompileMessage, ...]
    error_count: int | None  # from the Result line; None when the log has none
    warning_count: int | None


def decode_compile_log(data: bytes) -> str:
    """MetaEditor's log as text: UTF-16 LE with a BOM as it writes it; UTF-8 accepted too."""
    if data.startswith(UTF16_LE_BOM):
        return data[len(UTF16_LE_BOM) :].decode("utf-16-le", errors="replace")
    if data.startswith(UTF8_BOM):
        return data[len(UTF8_BOM) :].decode("utf-8", errors="replace")
    if len(data) >= 2 and data[1] == 0:  # UTF-16 LE without its BOM: ASCII text with a zero after each byte
        return data.decode("utf-16-le", errors="replace")
    return data.decode("utf-8", errors="replace")


def parse_compile_log(text: str) -> CompileLog:
    errors: list[CompileMessage] = []
    warnings: list[CompileMessage] = []
    error_count: int | None = None
    warning_count: int | None = None
    for raw in text.splitlines():
        line = raw.strip().lstrip("\ufeff")
        result = _RESULT.match(line)
        if result:
            error_count, warning_count = int(result["errors"]), int(result["warnings"])
            continue
        found = _MESSAGE.match(line)
        if found is None:
            continue  # "information:" lines, the banner, blank lines
        message = CompileMessage(
            file=PureWindowsPath(found["file"].strip()).name,
            line=int(found["line"] or 0),
            column=int(found["column"] or 0),
            code=int(found["code"] or 0),
            message=found["message"].strip(),
        )
        (errors if found["kind"].lower() == "error" else warnings).append(message)
    return CompileLog(tuple(errors), tuple(warnings), error_count, warning_count)


@dataclass(frozen=True, slots=True)
class CompileResult:
    compiled: bool
    errors: tuple[CompileMessage, ...]
    warnings: tuple[CompileMessage, ...]
    ex5_path: Path | None
    log_path: Path

    def output(self) -> dict[str, Any]:
        """The compile job's output_data (INTERFACE.md, Jobs)."""
        return {
            "compiled": self.compiled,
            "errors": [e.as_dict() for e in self.errors],
            "warnings": [w.as_dict() for w in self.warnings],
            "ex5_path": str(self.ex5_path) if self.ex5_path is not None else None,
        }


def needs_wine(executable: Path) -> bool:
    """A Windows program (``.exe``) runs under Wine when this is not Windows; anything else directly."""
    return os.name != "nt" and executable.suffix.lower() == ".exe"


def metaeditor_command(executable: Path, source: Path, log: Path, *, wine: str = "wine") -> list[str]:
    """The argument list off Windows (Wine or a native stand-in); see ``windows_command_line`` for Windows."""
    if needs_wine(executable):
        return [wine, str(executable), f"/compile:{wine_path(source)}", f"/log:{wine_path(log)}"]
    return [str(executable), f"/compile:{source}", f"/log:{log}"]


def windows_command_line(executable: PurePath, source: PurePath, log: PurePath) -> str:
    """MetaEditor's command line on Windows: ``"<exe>" /compile:"<source>" /log:"<log>"``.

    Built by hand because a list given to Popen goes through ``subprocess.list2cmdline``, which quotes
    a whole argument with a space (``"/compile:C:\\Users\\John Doe\\..."``), a form MetaEditor does
    not understand. A Windows path cannot hold ``"``, so quoting needs no escapes.
    """
    parts = {"MetaEditor": executable, "source": source, "log": log}
    for what, path in parts.items():
        if '"' in str(path):
            raise CompileError(f'the {what} path {path} holds a double quote ("), which Windows forbids')
    return f'"{executable}" /compile:"{source}" /log:"{log}"'


async def run_metaeditor(
    executable: Path, source: Path, log: Path, *, time_limit: float, wine: str = "wine"
) -> tuple[int, str]:
    """Run MetaEditor on ``source``; its exit code and stderr. Killed after ``time_limit`` seconds."""
    if os.name == "nt":
        return await _run_windows(windows_command_line(executable, source, log), time_limit)
    command = metaeditor_command(executable, source, log, wine=wine)
    try:
        process = await asyncio.create_subprocess_exec(
            *command,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
        )
    except OSError as error:
        raise CompileError(f"cannot start MetaEditor ({' '.join(command[:2])}): {error}") from None
    try:
        _, stderr = await asyncio.wait_for(process.communicate(), time_limit)
    except TimeoutError:
        with contextlib.suppress(ProcessLookupError):
            process.kill()
        await process.wait()
        raise _overran(time_limit) from None
    except asyncio.CancelledError:
        with contextlib.suppress(ProcessLookupError):
            process.kill()
        raise
    return process.returncode or 0, stderr.decode("utf-8", errors="replace")


async def _run_windows(command_line: str, time_limit: float) -> tuple[int, str]:
    """``run_metaeditor`` on Windows: Popen passes a string command line as is, which asyncio's
    subprocess functions cannot (they take a list); the wait runs in a thread to keep the loop free."""
    try:
        # Started on the loop, as asyncio starts its own subprocesses (CreateProcess returns at once),
        # so that a cancelled job cannot leave a MetaEditor started behind its back.
        process = subprocess.Popen(  # noqa: ASYNC220
            command_line, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
    except OSError as error:
        raise CompileError(f"cannot start MetaEditor ({command_line}): {error}") from None
    try:
        _, stderr = await asyncio.to_thread(process.communicate, timeout=time_limit)
    except subprocess.TimeoutExpired:
        process.kill()
        await asyncio.to_thread(process.communicate)  # reaps it and closes its stderr pipe
        raise _overran(time_limit) from None
    except asyncio.CancelledError:
        process.kill()  # the waiting thread then returns on its own
        raise
    return process.returncode or 0, stderr.decode("utf-8", errors="replace")


def _overran(time_limit: float) -> CompileError:
    return CompileError(f"MetaEditor did not finish within {time_limit:g} s and was stopped")


class Compiler:
    """Carries out compile jobs; one MetaEditor at a time."""

    def __init__(
        self,
        *,
        metaeditor_path: str | None = None,
        timeout: float = 120.0,
        max_source_bytes: int = 2_000_000,
        fetch_artifact: FetchArtifact | None = None,
        wine: str = "wine",
    ) -> None:
        self._metaeditor_path = metaeditor_path
        self.timeout = timeout
        self.max_source_bytes = max_source_bytes
        self._fetch_artifact = fetch_artifact
        self._wine = wine
        self._lock = asyncio.Lock()

    def metaeditor(self, folders: TerminalFolders) -> Path:
        """The configured MetaEditor, else metaeditor64.exe next to the terminal."""
        if self._metaeditor_path:
            return local_path(self._metaeditor_path)
        return folders.metaeditor

    async def source_of(self, *, source: str | None, version_id: str | None) -> str:
        """The inline source, else the version's artifact; refused above ``max_source_bytes``."""
        if source is None:
            if version_id is None:
                raise CompileError("the compile job has neither a source nor a version_id to fetch it by")
            if self._fetch_artifact is None:
                raise CompileError(
                    f"cannot fetch EA version {version_id}: no platform is configured (--api-url); "
                    "send the source inline"
                )
            try:
                source = await self._fetch_artifact(version_id)
            except Exception as error:  # any failure to download is this job's failure, with the reason
                raise CompileError(
                    f"could not fetch the source of EA version {version_id}: {error}"
                ) from None
            if not isinstance(source, str):
                raise CompileError(f"the artifact of EA version {version_id} is not text")
        size = len(source.encode("utf-8"))
        if size > self.max_source_bytes:
            raise CompileError(
                f"the EA source is {size:,} bytes, more than the {self.max_source_bytes:,} allowed "
                "(--artifact-max-bytes)"
            )
        if not source.strip():
            raise CompileError("the EA source is empty")
        return source

    async def compile(
        self,
        folders: TerminalFolders,
        ea_name: str,
        *,
        source: str | None = None,
        version_id: str | None = None,
    ) -> CompileResult:
        name = check_ea_name(ea_name)
        text = await self.source_of(source=source, version_id=version_id)
        executable = self.metaeditor(folders)
        if not executable.is_file():
            raise CompileError(
                f"MetaEditor is not at {executable}; set --metaeditor-path (MT5C_METAEDITOR_PATH)"
            )
        async with self._lock:
            source_file, log_file, ex5_file = _prepare(folders, name, text)
            code, stderr = await run_metaeditor(
                executable, source_file, log_file, time_limit=self.timeout, wine=self._wine
            )
            return _outcome(log_file, ex5_file, code, stderr)


def _prepare(folders: TerminalFolders, name: str, text: str) -> tuple[Path, Path, Path]:
    """Write the source; remove the last build's .ex5 and log so that neither is taken for this one."""
    source_file, log_file, ex5_file = (
        folders.source_file(name),
        folders.compile_log(name),
        folders.ex5_file(name),
    )
    try:
        folders.experts.mkdir(parents=True, exist_ok=True)
        # UTF-8 with a BOM: MetaEditor reads a BOM-less file as ANSI and would garble non-ASCII strings.
        # newline="": the source's own line ends; text mode on Windows would turn CRLF into CR CR LF.
        source_file.write_text(text, encoding="utf-8-sig", newline="")
        for stale in (log_file, ex5_file):
            stale.unlink(missing_ok=True)
    except OSError as error:
        raise CompileError(f"cannot write the EA source to {source_file}: {error}") from None
    return source_file, log_file, ex5_file


def _outcome(log_file: Path, ex5_file: Path, code: int, stderr: str) -> CompileResult:
    try:
        log = parse_compile_log(decode_compile_log(log_file.read_bytes()))
    except FileNotFoundError:
        detail = f"; it said: {stderr.strip()[:STDERR_SHOWN]}" if stderr.strip() else ""
        raise CompileError(f"MetaEditor wrote no log at {log_file} (exit code {code}){detail}") from None
    if log.error_count is None and not log.errors:
        raise CompileError(f"MetaEditor's log {log_file} has no 'Result:' line (exit code {code})")
    if log.error_count and not log.errors:
        raise CompileError(
            f"MetaEditor reported {log.error_count} error(s) that its log {log_file} does not list "
            "in the usual '<file>(<line>,<column>) : error <code>: <message>' form"
        )
    built = ex5_file.is_file()
    compiled = built and not log.errors
    if not log.errors and not built:
        raise CompileError(f"MetaEditor reported no errors but wrote no {ex5_file.name} (exit code {code})")
    return CompileResult(
        compiled=compiled,
        errors=log.errors,
        warnings=log.warnings,
        ex5_path=ex5_file if compiled else None,
        log_path=log_file,
    )
