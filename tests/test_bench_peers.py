"""The benchmark's parts, on few bars: tiled data, the reference loop, and the peers agreeing with it.

Not a timing test: it checks that backtesting.py and backtrader trade the same rules as the
reference loop (the oracle our engine is compared with), so that the benchmark compares like with like.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from types import ModuleType, SimpleNamespace

import numpy as np
import numpy.typing as npt
import pandas as pd  # type: ignore[import-untyped]
import pytest
import talib

# The benchmarks package lives at the repository root, which pytest does not put on sys.path.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.__main__ import main
from benchmarks.contenders import REPLAY_MODULE
from benchmarks.data import (
    bench_bars,
    load_eurusd,
    tile_bars,
    to_mt5_rates,
    write_replay_csv,
)
from benchmarks.peers import PeerRun, run_backtesting_py, run_backtrader
from benchmarks.reference import cross_above_signals, reference_trades, trades_from_signals
from benchmarks.rules import MAX_POSITIONS, PIP, SPREAD, BenchTrade, seed_strategy_json
from mt5console.core.broker.rates import RATES_DTYPE
from mt5console.core.strategy.model import parse_strategy

PEER_BARS = 2000
Rates = npt.NDArray[np.void]


def _rates(bars: list[tuple[float, float, float, float]], spread_points: int = 10) -> Rates:
    """Hand-made bars (open, high, low, close), hourly from 2024-01-01 00:00 UTC."""
    rates = np.zeros(len(bars), dtype=RATES_DTYPE)
    rates["time"] = 1_704_067_200 + 3600 * np.arange(len(bars))
    for field, column in zip(("open", "high", "low", "close"), zip(*bars, strict=True), strict=True):
        rates[field] = column
    rates["spread"] = spread_points
    return rates


def _flat(price: float, count: int) -> list[tuple[float, float, float, float]]:
    return [(price, price, price, price)] * count


def _signals(count: int, *bars: int) -> npt.NDArray[np.bool_]:
    signals = np.zeros(count, dtype=np.bool_)
    signals[list(bars)] = True
    return signals


def _keys(trades: list[BenchTrade]) -> list[tuple[int, int, str]]:
    return [(trade.entry_index, trade.exit_index, trade.reason) for trade in trades]


# --- the reference loop ------------------------------------------------------------------------


def test_entry_fills_at_next_open_ask_and_the_stop_wins_inside_one_bar() -> None:
    rates = _rates([(1.1, 1.1, 1.1, 1.1), (1.1, 1.105, 1.097, 1.1), *_flat(1.1, 2)])
    [trade] = trades_from_signals(rates, _signals(4, 0))
    ask = 1.1 + SPREAD
    assert trade.entry_index == 1
    assert trade.entry_price == pytest.approx(ask)
    # Both the stop (ask - 25 pips) and the target (ask + 40 pips) lie inside bar 1: the stop first.
    assert (trade.exit_index, trade.reason) == (1, "sl")
    assert trade.exit_price == pytest.approx(ask - 25 * PIP)


def test_target_and_gaps_fill_at_the_level_or_at_the_open_beyond_it() -> None:
    ask = 1.1 + SPREAD
    target_bar = (1.1, ask + 40 * PIP, 1.0999, 1.1)
    gap_up = (1.11, 1.111, 1.109, 1.11)
    gap_down = (1.09, 1.091, 1.089, 1.09)
    hit = trades_from_signals(_rates([*_flat(1.1, 2), target_bar, *_flat(1.1, 1)]), _signals(4, 0))
    above = trades_from_signals(_rates([*_flat(1.1, 2), gap_up]), _signals(3, 0))
    below = trades_from_signals(_rates([*_flat(1.1, 2), gap_down]), _signals(3, 0))
    assert [(t.reason, t.exit_index) for t in hit] == [("tp", 2)]
    assert hit[0].exit_price == pytest.approx(ask + 40 * PIP)
    assert [(t.reason, t.exit_price) for t in above] == [("tp", 1.11)]
    assert [(t.reason, t.exit_price) for t in below] == [("sl", 1.09)]


def test_max_positions_refuses_signals_until_a_position_closes() -> None:
    stop_out = (1.1, 1.1, 1.097, 1.1)
    rates = _rates([*_flat(1.1, 4), stop_out, *_flat(1.1, 2)])
    trades = trades_from_signals(rates, _signals(7, 0, 1, 2, 3, 4))
    # Bar 3's signal is refused (three open); bar 4's stop-out frees the slots before its close.
    assert MAX_POSITIONS == 3
    assert _keys(trades) == [(1, 4, "sl"), (2, 4, "sl"), (3, 4, "sl"), (5, 6, "end")]
    assert trades[-1].exit_price == 1.1


def test_a_signal_on_the_last_bar_is_never_filled() -> None:
    assert trades_from_signals(_rates(_flat(1.1, 3)), _signals(3, 2)) == []


def test_cross_above_signals_follow_ta_lib_emas_on_closed_bars() -> None:
    closes = np.concatenate([1.2 - 0.0001 * np.arange(40), 1.196 + 0.002 * np.arange(1, 6)])
    signals = cross_above_signals(closes)
    fast, slow = talib.EMA(closes, timeperiod=9), talib.EMA(closes, timeperiod=21)
    [bar] = np.flatnonzero(signals)
    assert 40 <= bar < 45
    assert fast[bar - 1] <= slow[bar - 1] and fast[bar] > slow[bar]
    assert not signals[:21].any()  # warm-up: no EMA(21) yet, never a signal


def test_reference_rejects_arrays_that_are_not_mt5_rates() -> None:
    with pytest.raises(ValueError, match="missing fields"):
        reference_trades(np.zeros(10, dtype=[("open", "<f8"), ("close", "<f8")]))
    with pytest.raises(ValueError, match="one value per bar"):
        trades_from_signals(_rates(_flat(1.1, 3)), np.zeros(2, dtype=np.bool_))


# --- the data ----------------------------------------------------------------------------------


def test_tiled_bars_are_continuous_in_price_and_hourly_at_the_seams() -> None:
    block = load_eurusd()
    tiled = tile_bars(block, 2 * len(block) + 345)
    size = len(block)
    assert len(tiled) == 2 * size + 345
    assert tiled.index.is_monotonic_increasing and tiled.index.is_unique
    assert str(tiled.index.tz) == "UTC"
    for seam in (size, 2 * size):
        assert tiled["Open"].iloc[seam] == tiled["Close"].iloc[seam - 1]
        assert tiled.index[seam] - tiled.index[seam - 1] == pd.Timedelta(hours=1)
    # The shift is additive: every bar keeps its pip ranges and moves.
    first, second = tiled.iloc[:size], tiled.iloc[size : 2 * size]
    ranges = second["High"].to_numpy() - second["Low"].to_numpy()
    assert np.allclose(ranges, first["High"].to_numpy() - first["Low"].to_numpy(), atol=1e-9)
    assert (second["Volume"].to_numpy() == block["Volume"].to_numpy()).all()


def test_tile_rejects_bad_lengths_and_naive_times() -> None:
    block = load_eurusd()
    with pytest.raises(ValueError, match="n_bars"):
        tile_bars(block, 0)
    with pytest.raises(ValueError, match="timezone aware"):
        tile_bars(block.tz_localize(None), 10)


def test_rates_and_csv_carry_the_same_bars(tmp_path: Path) -> None:
    bars = bench_bars(300)
    rates = bars.rates
    assert rates.dtype == RATES_DTYPE
    assert rates["time"][0] == 1_492_592_400  # 2017-04-19 09:00 UTC, the sample's first bar
    assert (np.diff(rates["time"]) > 0).all()
    assert (rates["close"] == bars.frame["Close"].to_numpy()).all()
    assert (rates["spread"] == 10).all()
    path = tmp_path / "bars.csv"
    write_replay_csv(bars.frame, path)
    table = pd.read_csv(path)
    assert list(table.columns) == ["time", "open", "high", "low", "close", "volume", "spread"]
    assert (table["time"].to_numpy() == rates["time"]).all()
    for field in ("open", "high", "low", "close"):
        assert (table[field].to_numpy() == rates[field]).all()
    assert (to_mt5_rates(bars.frame)["tick_volume"] == table["volume"].to_numpy()).all()


def test_the_benchmarked_strategy_is_a_valid_seed_strategy() -> None:
    strategy = parse_strategy(seed_strategy_json())
    assert strategy.risk.max_positions == MAX_POSITIONS
    assert [entry.side.value for entry in strategy.entries] == ["buy"]


# --- the peers ---------------------------------------------------------------------------------

BarsAndReference = tuple[pd.DataFrame, list[BenchTrade]]


@pytest.fixture(scope="module")
def peer_bars_and_reference() -> BarsAndReference:
    bars = bench_bars(PEER_BARS)
    expected = reference_trades(bars.rates)
    signals = cross_above_signals(np.ascontiguousarray(bars.rates["close"]))
    # The bars must exercise the position cap: some signal before the last bar is refused.
    assert np.flatnonzero(signals)[-1] < PEER_BARS - 1
    assert int(signals.sum()) > len(expected) > 20
    return bars.frame, expected


@pytest.mark.parametrize(
    "run_peer", [run_backtesting_py, run_backtrader], ids=["backtesting.py", "backtrader"]
)
def test_peer_trades_the_reference_loops_trades(
    run_peer: Callable[[pd.DataFrame], PeerRun], peer_bars_and_reference: BarsAndReference
) -> None:
    frame, expected = peer_bars_and_reference
    result = run_peer(frame)
    # The tolerance is zero: both peers are set up to follow the rules exactly on these bars.
    assert _keys(result.trades) == _keys(expected)
    assert [t.entry_price for t in result.trades] == pytest.approx([t.entry_price for t in expected])
    assert [t.exit_price for t in result.trades] == pytest.approx([t.exit_price for t in expected])
    assert result.seconds > 0


def test_bench_command_prints_json_with_peer_counts_equal_to_the_reference(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["--bars", "400", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    by_name = {contender["name"]: contender for contender in report["contenders"]}
    assert report["bars"] == 400
    assert report["reference_trades"] == len(reference_trades(bench_bars(400).rates))
    for peer in ("backtesting.py", "backtrader"):
        assert by_name[peer]["status"] == "ok"
        assert by_name[peer]["trades"] == report["reference_trades"]
        assert by_name[peer]["bars_per_second"] > 0
    assert by_name["backtesting.py"]["ratio_vs_backtesting_py"] == pytest.approx(1.0)
    ours = by_name["mt5console"]
    if ours["status"] == "unavailable":
        assert "not available yet" in ours["message"]
        assert ours["trades"] is None and report["targets"]["met"] is None
    else:
        assert ours["status"] == "ok"


def test_our_engine_is_timed_once_its_replay_exists(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The harness calls ``run_replay(strategy_json, rates, symbol=, timeframe=)`` and counts ``.trades``.

    The replay is played here by the reference loop in a module put where the engine's will be.
    """
    calls: list[tuple[dict[str, object], int, str, str]] = []

    def run_replay(
        strategy: dict[str, object], bars: Rates, symbol: str = "EURUSD", timeframe: str = "H1"
    ) -> SimpleNamespace:
        calls.append((strategy, len(bars), symbol, timeframe))
        return SimpleNamespace(trades=reference_trades(bars))

    replay_module = ModuleType(REPLAY_MODULE)
    replay_module.run_replay = run_replay  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, REPLAY_MODULE, replay_module)

    assert main(["--bars", "300", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    ours = report["contenders"][0]
    assert ours["name"] == "mt5console" and ours["status"] == "ok"
    assert ours["trades"] == report["reference_trades"] and ours["trades_vs_reference"] == 0
    assert ours["ratio_vs_backtesting_py"] > 0 and ours["ratio_vs_backtrader"] > 0
    assert isinstance(report["targets"]["met"], bool)
    assert calls == [(seed_strategy_json(), 300, "EURUSD", "H1")]
