"""Defects a review of ``mt5console replay`` and ``check`` reproduced, each pinned by the case that
showed it: the sizing the summary states, CSV files as other tools write them (blank spread cells,
UTF-16, a pandas row index), options blamed on the strategy file, a data offset shifting times that
carry their zone, suffixed symbols, a closed pipe, a volume beyond int64, the news filter's wording."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from benchmarks.data import load_eurusd, write_replay_csv
from mt5console.core.broker.sim.csvbars import load_bars
from mt5console.core.replay import MarketOptionError, UnrunnableStrategy, run_replay
from mt5console.core.strategy.executor import ATR_14
from mt5console.core.strategy.model import parse_strategy
from mt5console.core.strategy.model_types import RiskMethod
from mt5console.core.strategy.risk import size_position
from mt5console.core.strategy.summary import SIZING_ATR_PERIOD, summarize
from mt5console.replay_cli import replay_main
from tests.helpers import always_buy
from tests.market_data import EURUSD

HEADER = "time,open,high,low,close,volume,spread"
START = datetime(2024, 1, 2, tzinfo=UTC)  # a Tuesday


def csv_rows(count: int, time_of: Any = lambda when: when.strftime("%Y-%m-%dT%H:%M:%S")) -> list[str]:
    """``count`` H1 bars from START, each time written by ``time_of``, spread 10 points."""
    return [f"{time_of(START + timedelta(hours=i))},1.1000,1.1010,1.0990,1.1005,100,10" for i in range(count)]


def run_cli(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = replay_main(argv)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.fixture
def files(tmp_path: Path) -> tuple[Path, Path]:
    """An H1 strategy that buys on every bar, and 200 real EURUSD H1 bars in a neutral file name."""
    strategy = tmp_path / "buyer.json"
    strategy.write_text(json.dumps(always_buy(timeframe="H1")))
    bars = tmp_path / "bars.csv"
    write_replay_csv(load_eurusd().iloc[:200], bars)
    return strategy, bars


# ------------------------------------------------------------------ 1. the summary says how lots are sized


def sized_strategy(method: str, *, stop: bool = True) -> dict[str, Any]:
    exits: dict[str, Any] = {"takeProfit": {"type": "pips", "value": 15}}
    if stop:
        exits["stopLoss"] = {"type": "pips", "value": 10}
    return always_buy(
        timeframe="H1",
        rules={
            "exit": exits,
            "riskManagement": {
                "lotSize": 0.1,
                "maxPositions": 1,
                "dynamicRisk": {"enabled": True, "method": method, "riskPercent": 1},
            },
        },
    )


def lots_follow_the_balance(method: RiskMethod) -> bool:
    """What risk.py does: whether the volume moves with the balance (sized) or stays the lot size."""
    strategy = parse_strategy(sized_strategy(method.value))
    volumes = {
        size_position(
            strategy.risk,
            balance=balance,
            spec=EURUSD,
            entry_price=1.1,
            stop_distance=0.001,
            atr=0.002,
            trade_history=[10.0, -5.0] * 20,
        ).volume
        for balance in (10_000.0, 20_000.0)
    }
    return volumes != {0.1}


@pytest.mark.parametrize("method", list(RiskMethod))
def test_the_summary_states_a_lot_size_only_when_risk_py_trades_it(method: RiskMethod) -> None:
    summary = summarize(parse_strategy(sized_strategy(method.value)))
    if lots_follow_the_balance(method):
        assert "buys when" in summary and "buys 0.1 lots" not in summary
    else:
        assert "buys 0.1 lots when" in summary
    assert "sized by dynamic risk" not in summary


def test_each_method_is_described_as_risk_py_sizes_it() -> None:
    def risk_clause(method: str, *, stop: bool = True) -> str:
        return summarize(parse_strategy(sized_strategy(method, stop=stop))).split("; ")[1]

    assert risk_clause("fixed") == (
        "dynamic risk's fixed method keeps the lot size (riskPercent 1% of the balance is not used)"
    )
    assert risk_clause("atr") == "each position sized to risk 1% of the balance over the stop loss distance"
    assert risk_clause("atr", stop=False) == (
        "each position sized to risk 1% of the balance over one ATR(14) (no stop loss)"
    )
    assert risk_clause("volatility") == (
        "each position sized so that one ATR(14) against it costs 1% of the balance, whatever the stop"
    )
    kelly = risk_clause("kelly")
    assert "Kelly fraction" in kelly and "at most 1% of the balance over the stop loss distance" in kelly
    assert "0.1 lots until 20 closed trades" in kelly
    # The ATR named is the one the executor sizes with.
    assert ATR_14.name == f"atr_{SIZING_ATR_PERIOD}"


# ------------------------------------------------------------------ 2-4, 8. CSV files as tools write them


def test_a_blank_spread_cell_takes_the_default_spread(tmp_path: Path) -> None:
    rows = csv_rows(4)
    rows[2] = rows[2].removesuffix("10")  # "...,100," : the spread cell left blank
    path = tmp_path / "bars.csv"
    path.write_text("\n".join([HEADER, *rows]) + "\n")
    bars = load_bars(path, timeframe=None, default_spread=7)
    assert bars.bars.spread.tolist() == [10, 10, 7, 10]


def test_a_utf16_file_with_a_bom_is_read_as_the_same_bars(tmp_path: Path) -> None:
    text = "\n".join([HEADER.replace(",", "\t"), *(row.replace(",", "\t") for row in csv_rows(5))]) + "\n"
    utf8, utf16 = tmp_path / "utf8.csv", tmp_path / "utf16.csv"
    utf8.write_text(text, encoding="utf-8")
    utf16.write_text(text, encoding="utf-16")  # with its byte order mark, as Windows writes it
    assert utf16.read_bytes()[:2] in (b"\xff\xfe", b"\xfe\xff")
    expected, got = (
        load_bars(utf8, timeframe=None, default_spread=0),
        load_bars(utf16, timeframe=None, default_spread=0),
    )
    assert got.frame == expected.frame
    for field in ("time", "open", "high", "low", "close", "volume", "spread"):
        assert np.array_equal(getattr(got.bars, field), getattr(expected.bars, field))


def test_bytes_that_are_not_utf8_are_named_with_the_file(
    files: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    strategy, bars = files
    bars.write_bytes(("\n".join([HEADER, *csv_rows(3)]) + "\n").encode() + b"caf\xe9\n")
    code, out, err = run_cli([str(strategy), "--data", str(bars)], capsys)
    assert (code, out) == (2, "")
    assert f"{bars}: not UTF-8 text (save it as UTF-8)" in err
    assert "codec" not in err


def test_a_pandas_row_index_is_not_taken_for_times(tmp_path: Path) -> None:
    path = tmp_path / "bars.csv"
    rows = [f"{i},1.1000,1.1010,1.0990,1.1005,100,10" for i in range(5)]
    path.write_text("\n".join(["," + HEADER.removeprefix("time,"), *rows]) + "\n")
    with pytest.raises(
        ValueError, match="missing column time: the unnamed first column holds the row numbers"
    ):
        load_bars(path, timeframe="H1", default_spread=0)
    # An unnamed first column of times (a pandas DatetimeIndex) is still the time.
    path.write_text("\n".join(["," + HEADER.removeprefix("time,"), *csv_rows(5)]) + "\n")
    assert len(load_bars(path, timeframe=None, default_spread=0).bars.time) == 5


def test_a_volume_beyond_int64_is_refused_with_its_line(
    files: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    strategy, bars = files
    rows = csv_rows(4)
    rows[1] = rows[1].replace(",100,", ",1e20,")
    bars.write_text("\n".join([HEADER, *rows]) + "\n")
    code, _, err = run_cli([str(strategy), "--data", str(bars)], capsys)
    assert code == 2
    assert f"{bars}: line 3: volume '1e20' is too large" in err


# ------------------------------------------------------------------ 5, 7, 9. who is at fault


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("--timeframe", "X5", "--timeframe: unknown timeframe 'X5'"),
        ("--symbol", "", "--symbol: must not be empty"),
    ],
)
def test_a_bad_option_is_named_not_the_strategy_file(
    files: tuple[Path, Path], capsys: pytest.CaptureFixture[str], option: str, value: str, message: str
) -> None:
    strategy, bars = files
    code, out, err = run_cli([str(strategy), "--data", str(bars), option, value], capsys)
    assert (code, out) == (2, "")
    assert message in err
    assert "invalid strategy" not in err and strategy.name not in err


def test_run_replay_names_the_bad_argument(files: tuple[Path, Path]) -> None:
    _, bars = files
    with pytest.raises(MarketOptionError, match=r"^timeframe: unknown timeframe 'X5'") as raised:
        run_replay(always_buy(timeframe="H1"), bars, timeframe="X5")
    assert raised.value.option == "timeframe"


def test_a_suffixed_symbol_is_pointed_at_its_base(
    files: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    strategy, bars = files
    strategy.write_text(json.dumps(always_buy(timeframe="H1", symbol="EURUSD.m")))
    code, _, err = run_cli([str(strategy), "--data", str(bars)], capsys)
    assert code == 2
    assert "EURUSD.m, EURUSD with a broker's suffix" in err and "give --symbol EURUSD" in err
    code, _, err = run_cli([str(strategy), "--data", str(bars), "--symbol", "EURUSD"], capsys)
    assert code == 0, err


def test_the_news_filter_is_worded_as_check_words_it(
    files: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    strategy, bars = files
    strategy.write_text(json.dumps(always_buy(timeframe="H1", rules={"newsFilter": {"enabled": True}})))
    code, _, err = run_cli([str(strategy), "--data", str(bars)], capsys)
    assert code == 2
    assert err.splitlines()[0] == f"{strategy}: the console cannot run this strategy"
    assert "  rules.newsFilter: no economic calendar source" in err
    assert "invalid strategy" not in err
    with pytest.raises(UnrunnableStrategy):
        run_replay(json.loads(strategy.read_text()), bars)


# ------------------------------------------------------------------ 6. the data offset and zoned times


@pytest.mark.parametrize(
    ("time_of", "kind"),
    [
        (lambda when: when.astimezone(timezone(timedelta(hours=2))).isoformat(), "carries its zone"),
        (lambda when: when.strftime("%Y-%m-%dT%H:%M:%SZ"), "carries its zone"),
    ],
    ids=["offset", "Z"],
)
def test_the_data_offset_is_refused_for_times_that_carry_their_zone(
    files: tuple[Path, Path], capsys: pytest.CaptureFixture[str], time_of: Any, kind: str
) -> None:
    strategy, bars = files
    bars.write_text("\n".join([HEADER, *csv_rows(30, time_of)]) + "\n")
    code, out, err = run_cli([str(strategy), "--data", str(bars), "--data-utc-offset", "2"], capsys)
    assert (code, out) == (2, "")
    assert f"{bars}: line 2: time" in err and kind in err
    assert "--data-utc-offset applies only to times without one" in err
    code, _, err = run_cli([str(strategy), "--data", str(bars)], capsys)
    assert code == 0, err  # the same file without the option replays


@pytest.mark.parametrize(
    "time_of",
    [None, lambda when: str(int(when.timestamp()))],
    ids=["naive ISO", "epoch seconds, as MetaTrader's rates are saved"],
)
def test_the_data_offset_still_shifts_times_without_a_zone(files: tuple[Path, Path], time_of: Any) -> None:
    _, bars = files
    bars.write_text("\n".join([HEADER, *(csv_rows(30, time_of) if time_of else csv_rows(30))]) + "\n")
    strategy = always_buy(timeframe="H1")
    as_utc = run_replay(strategy, bars).trades
    shifted = run_replay(strategy, bars, data_utc_offset=2).trades
    assert as_utc and [t.entry_time - timedelta(hours=2) for t in as_utc] == [t.entry_time for t in shifted]


# ------------------------------------------------------------------ 8. a reader that goes away


def test_a_closed_pipe_ends_the_replay_quietly(files: tuple[Path, Path]) -> None:
    strategy, bars = files
    command = [sys.executable, "-m", "mt5console.cli", "replay", str(strategy), "--data", str(bars)]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert process.stdout is not None and process.stderr is not None
    process.stdout.close()  # as `| head -1` does once it has its line: every write now fails
    err = process.stderr.read()
    assert process.wait(timeout=120) == 0
    assert "Traceback" not in err and "BrokenPipeError" not in err, err


# ------------------------------------------------------------------ the timeframe of a file with a stray row


def test_one_stray_row_off_the_grid_is_refused_not_taken_for_the_timeframe(tmp_path: Path) -> None:
    """An H1 file with one extra 18:30 row was read as M30, each H1 bar squeezed into half its time."""
    rows = csv_rows(30)
    half_past = START + timedelta(hours=18, minutes=30)
    stray = f"{half_past.strftime('%Y-%m-%dT%H:%M:%S')},1.1,1.101,1.099,1.1,100,10"
    rows.insert(19, stray)  # after the 18:00 bar
    bars = tmp_path / "EURUSD_H1.csv"
    bars.write_text("\n".join([HEADER, *rows]) + "\n")
    with pytest.raises(
        ValueError, match=r"line 21: bar starts 1800 s after the previous one, less than one H1"
    ):
        load_bars(bars, timeframe=None, default_spread=10)
