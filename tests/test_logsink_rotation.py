"""The log file goes on being written when its rollover is refused, as Windows refuses to rename a file
another program holds open (a trader following it with ``Get-Content -Wait``)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from mt5console.core.events import Level, LogLine
from mt5console.core.logsink import LOG_FILE, LogSink
from mt5console.core.store import Store


def line(number: int) -> LogLine:
    return LogLine(level=Level.INFO, source="test", message=f"line {number} " + "x" * 60)


def test_lines_are_kept_when_the_rollover_cannot_rename_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def held_open(source: Any, dest: Any) -> None:
        raise PermissionError(
            32, "The process cannot access the file because it is being used by another process"
        )

    store = Store(tmp_path / "mt5console.db")
    sink = LogSink(store, tmp_path / "logs", max_bytes=300)
    monkeypatch.setattr(os, "rename", held_open)
    try:
        for number in range(12):
            sink(line(number))
    finally:
        sink.close()
        store.close()
    text = (tmp_path / "logs" / LOG_FILE).read_text(encoding="utf-8")
    assert all(f"line {number} " in text for number in range(12)), text
    assert text.count("the log file could not be rotated") == 1
    assert "Logging error" not in capsys.readouterr().err


def test_the_rollover_still_rotates_where_the_file_may_be_renamed(tmp_path: Path) -> None:
    store = Store(tmp_path / "mt5console.db")
    sink = LogSink(store, tmp_path / "logs", max_bytes=300)
    try:
        for number in range(12):
            sink(line(number))
    finally:
        sink.close()
        store.close()
    assert (tmp_path / "logs" / f"{LOG_FILE}.1").exists()
