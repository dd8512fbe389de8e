"""Bars exported by MetaTrader itself carry its trade server's time, while the replay judges sessions
and shows times in UTC: the replay says so, and ``--data-utc-offset`` converts them."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from benchmarks.data import load_eurusd
from mt5console.core.replay import SERVER_TIME_NOTE
from mt5console.replay_cli import replay_main
from tests.helpers import always_buy

SERVER_AHEAD = timedelta(hours=3)


def metatrader_export(path: Path, bars: int = 400) -> None:
    """EURUSD H1 bars as MetaTrader's "Export bars" writes them, on a UTC+3 server's clock."""
    lines = ["<DATE>\t<TIME>\t<OPEN>\t<HIGH>\t<LOW>\t<CLOSE>\t<TICKVOL>\t<VOL>\t<SPREAD>"]
    for when, row in load_eurusd().iloc[:bars].iterrows():
        server = when.to_pydatetime() + SERVER_AHEAD
        lines.append(
            f"{server:%Y.%m.%d}\t{server:%H:%M:%S}\t{row.Open}\t{row.High}\t{row.Low}\t{row.Close}\t"
            f"{int(row.Volume)}\t0\t10"
        )
    path.write_text("\n".join(lines) + "\n")


def london_buyer() -> dict[str, Any]:
    return always_buy(
        timeframe="H1",
        rules={
            "sessionFilter": {"enabled": True, "allowedSessions": ["London"]},
            "exit": {"stopLoss": {"type": "pips", "value": 5}, "takeProfit": {"type": "pips", "value": 5}},
            "riskManagement": {"lotSize": 0.01, "maxPositions": 1},
        },
    )


def replay(tmp_path: Path, capsys: pytest.CaptureFixture[str], *extra: str) -> tuple[list[datetime], str]:
    strategy, bars = tmp_path / "london.json", tmp_path / "EURUSD_H1.csv"
    strategy.write_text(json.dumps(london_buyer()))
    metatrader_export(bars)
    code = replay_main([str(strategy), "--data", str(bars), "--json", *extra])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    trades = json.loads(captured.out)["trades"]
    return [datetime.fromisoformat(trade["entry_time"]) for trade in trades], captured.err


def test_an_export_in_server_time_is_converted_and_sessions_are_judged_in_utc(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    converted, err = replay(tmp_path, capsys, "--data-utc-offset", "3")
    assert converted, "the strategy trades in every London session"
    # London is 07:00-16:00 UTC; an entry is filled at the open after the deciding bar's close.
    assert {entry.hour for entry in converted} <= set(range(7, 17))
    assert {entry.hour for entry in converted} & {7, 8}, "the session's first hours (UTC) trade"
    assert "MetaTrader's own export" not in err

    as_utc, err = replay(tmp_path, capsys)  # the server's times read as UTC, as before
    assert f"note: {SERVER_TIME_NOTE}" in err.splitlines()
    assert as_utc != converted
    # Those entries were hours off: in true UTC, some came before London opened.
    assert {(entry - SERVER_AHEAD).hour for entry in as_utc} & {4, 5, 6}


def test_a_bad_offset_is_refused_naming_it(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    strategy = tmp_path / "london.json"
    strategy.write_text(json.dumps(london_buyer()))
    code = replay_main([str(strategy), "--data", str(tmp_path / "none.csv"), "--data-utc-offset", "2.3"])
    assert code == 2
    assert "--data-utc-offset: '2.3' is not hours ahead of UTC" in capsys.readouterr().err
