"""The log file goes on being written when its rollover is refused, as Windows refuses to rename a file
another program holds open (a trader following it with ``Get-Content -Wait``), and no backup is lost."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from mt5console.core.events import Level, LogLine
from mt5console.core.logsink import LOG_FILE, LogSink
from mt5console.core.store import Store

HELD = "The process cannot access the file because it is being used by another process"


def line(number: int) -> LogLine:
    return LogLine(level=Level.INFO, source="test", message=f"line {number} " + "x" * 60)


def write_lines(tmp_path: Path, count: int) -> None:
    store = Store(tmp_path / "mt5console.db")
    sink = LogSink(store, tmp_path / "logs", max_bytes=300)
    try:
        for number in range(count):
            sink(line(number))
    finally:
        sink.close()
        store.close()


def held_open(monkeypatch: pytest.MonkeyPatch, held: Path) -> None:
    """os.replace and os.rename as Windows does them while ``held`` is open in another program."""
    for name in ("replace", "rename"):
        monkeypatch.setattr(os, name, refusing(getattr(os, name), held))


def refusing(move: Callable[[Any, Any], None], held: Path) -> Callable[[Any, Any], None]:
    def move_unless_held(source: Any, dest: Any) -> None:
        if Path(source) == held:
            raise PermissionError(32, HELD)
        move(source, dest)

    return move_unless_held


def backups(tmp_path: Path) -> dict[str, str]:
    logs = tmp_path / "logs"
    return {p.name: p.read_text(encoding="utf-8") for p in sorted(logs.glob(f"{LOG_FILE}.*"))}


def test_lines_and_backups_are_kept_while_the_log_file_is_held_open(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    logs = tmp_path / "logs"
    logs.mkdir()
    for number in range(1, 6):
        (logs / f"{LOG_FILE}.{number}").write_text(f"old backup {number}\n", encoding="utf-8")
    before = backups(tmp_path)
    held_open(monkeypatch, logs / LOG_FILE)
    write_lines(tmp_path, 12)
    text = (logs / LOG_FILE).read_text(encoding="utf-8")
    assert all(f"line {number} " in text for number in range(12)), text
    assert text.count("the log file could not be rotated") == 1
    assert backups(tmp_path) == before  # the stock rollover shifted them before failing: .2-.5 were lost
    assert "Logging error" not in capsys.readouterr().err


def test_a_backup_held_open_puts_the_live_file_back(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    logs = tmp_path / "logs"
    logs.mkdir()
    (logs / f"{LOG_FILE}.1").write_text("old backup 1\n", encoding="utf-8")
    held_open(monkeypatch, logs / f"{LOG_FILE}.1")
    write_lines(tmp_path, 12)
    text = (logs / LOG_FILE).read_text(encoding="utf-8")
    assert all(f"line {number} " in text for number in range(12)), text
    assert (logs / f"{LOG_FILE}.1").read_text(encoding="utf-8") == "old backup 1\n"


def test_the_rollover_rotates_where_files_may_be_renamed(tmp_path: Path) -> None:
    write_lines(tmp_path, 12)
    logs = tmp_path / "logs"
    kept = "".join(backups(tmp_path).values()) + (logs / LOG_FILE).read_text(encoding="utf-8")
    assert (logs / f"{LOG_FILE}.1").exists() and not (logs / f"{LOG_FILE}.rotating").exists()
    assert all(f"line {number} " in kept for number in range(6, 12))  # the newest lines, in order of age
