"""``mt5console replay``: the live engine on the stepped simulator, driven by the replay clock.

The seed strategy must make exactly the reference loop's trades on real EURUSD H1 bars; the fill
rules are checked one by one on hand-built bars; the simulator's fast-forward must equal stepping
bar by bar; the command's output and its errors are checked through ``replay_main``.
"""

from __future__ import annotations

import io
import json
import sys
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the benchmarks package

from benchmarks.data import load_eurusd, to_mt5_rates, write_replay_csv
from benchmarks.reference import reference_trades
from benchmarks.rules import seed_strategy_json
from mt5console.core.broker.sim import SimTerminal
from mt5console.core.replay import ReplayError, ReplayResult, run_replay
from mt5console.core.replay_report import ReplayTrade, summarize_trades
from mt5console.core.replay_schedule import Timetable
from mt5console.core.strategy.executor import StrategyRunner
from mt5console.core.strategy.model import StrategyError
from mt5console.replay_cli import TICK_TIMES_NOTE, ProgressBar, replay_main
from tests.helpers import ema_cross_both_ways

Rates = npt.NDArray[np.void]
START = datetime(2024, 1, 2, tzinfo=UTC)  # a Tuesday
HOUR = timedelta(hours=1)


@pytest.fixture(scope="module")
def eurusd() -> Rates:
    """backtesting.py's EURUSD H1 sample (about 5000 bars) in the MetaTrader5 rates dtype, spread 1 pip."""
    return to_mt5_rates(load_eurusd())


def bar_index(rates: Rates, when: datetime) -> int:
    """The bar whose time span holds ``when``."""
    return int(np.searchsorted(rates["time"], int(when.timestamp()), side="right")) - 1


# ------------------------------------------------------------------------------ the seed, on real bars


def test_the_seed_strategy_makes_exactly_the_reference_trades(eurusd: Rates) -> None:
    result = run_replay(seed_strategy_json(), eurusd, symbol="EURUSD", timeframe="H1")
    expected = reference_trades(eurusd)
    assert len(expected) > 80  # enough trades for the comparison to mean something
    assert {t.reason for t in expected} >= {"sl", "tp"}
    mine = sorted(result.trades, key=lambda t: (t.entry_time, t.ticket))
    assert [
        (bar_index(eurusd, t.entry_time), bar_index(eurusd, t.exit_time), t.exit_reason) for t in mine
    ] == [(t.entry_index, t.exit_index, t.reason) for t in expected]
    assert [t.entry_price for t in mine] == pytest.approx([t.entry_price for t in expected], abs=1e-9)
    assert [t.exit_price for t in mine] == pytest.approx([t.exit_price for t in expected], abs=1e-9)
    # Entries fill at the open of the bar after the cross, exactly at its open time.
    assert all(
        int(t.entry_time.timestamp()) == int(eurusd["time"][bar_index(eurusd, t.entry_time)]) for t in mine
    )
    assert all(t.side == "buy" and t.volume == 0.01 for t in mine)
    # The engine was called only on the bars after a signal (one per entry here), not on every bar,
    # and read its indicators from the primed full history: ema_9, ema_21 and atr_14 at most once each.
    assert result.engine_turns < len(eurusd) // 10
    assert result.indicator_misses <= 3
    assert result.bars == len(eurusd) and result.bars_per_second > 0


BOTH_SIDES = ema_cross_both_ways(
    "both_sides",
    stop_loss={"type": "atr", "atrMultiplier": 2.0},
    take_profit={"type": "rr_ratio", "rrRatio": 2.0},
    rsi_band=(28, 72),
)


def test_skipping_bars_changes_nothing_against_the_engine_on_every_bar(
    eurusd: Rates, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The timetable lets the engine skip the bars where it provably does nothing: with the engine
    called on every bar instead, the trades of a two-sided strategy with exit conditions are the same."""
    skipping = run_replay(BOTH_SIDES, eurusd[:2500])
    reasons = {t.exit_reason for t in skipping.trades}
    assert {"sl", "tp", "signal"} <= reasons and {t.side for t in skipping.trades} == {"buy", "sell"}
    monkeypatch.setattr(
        Timetable,
        "next_turn",
        lambda self, after, positions_open: after + 1 if after + 1 < self.length else None,
    )
    every_bar = run_replay(BOTH_SIDES, eurusd[:2500])
    assert every_bar.engine_turns == 2499 and skipping.engine_turns < 2499 // 3
    assert every_bar.trades == skipping.trades


# ------------------------------------------------------------------------------ hand-built bars


def write_bars(path: Path, bars: Sequence[tuple[float, float, float, float]], spread: int = 0) -> Path:
    """Hourly EURUSD bars from START: (open, high, low, close), with a spread column."""
    lines = ["time,open,high,low,close,spread"]
    for number, (o, h, low, c) in enumerate(bars):
        when = (START + number * HOUR).strftime("%Y-%m-%dT%H:%M:%SZ")
        lines.append(f"{when},{o},{h},{low},{c},{spread}")
    path.write_text("\n".join(lines) + "\n")
    return path


def cross_strategy(level: float = 1.1040, side: str = "buy", **rules: Any) -> dict[str, Any]:
    """Enter once, when the close crosses the level (above for a buy, below for a sell)."""
    condition = "crosses_above" if side == "buy" else "crosses_below"
    merged: dict[str, Any] = {
        "entry": {
            "side": side,
            "conditions": [{"indicator": "close", "condition": condition, "value": level}],
        },
        "exit": {"stopLoss": {"type": "pips", "value": 25}, "takeProfit": {"type": "pips", "value": 40}},
        "riskManagement": {"lotSize": 0.01, "maxPositions": 1},
    }
    merged.update(rules)
    return {"strategyId": "hand", "symbol": "EURUSD", "timeframe": "H1", "rules": merged}


QUIET = (1.1000, 1.1010, 1.0990, 1.1000)
SIGNAL = (1.1000, 1.1060, 1.0990, 1.1050)  # closes above 1.1040: a buy signal on its close


def replay_bars(
    tmp_path: Path, bars: Sequence[tuple[float, float, float, float]], **strategy: Any
) -> ReplayResult:
    return run_replay(cross_strategy(**strategy), write_bars(tmp_path / "EURUSD_H1.csv", bars))


def only(trades: Sequence[ReplayTrade]) -> ReplayTrade:
    assert len(trades) == 1, trades
    return trades[0]


def test_the_stop_is_taken_when_the_bar_reaches_both_levels(tmp_path: Path) -> None:
    # Filled at bar 2's open (1.1050): SL 1.1025, TP 1.1090. Bar 2 reaches both, and it is bearish,
    # so its high (the target) came first, yet the bar does not prove it: the stop is taken.
    trade = only(replay_bars(tmp_path, [QUIET, SIGNAL, (1.1050, 1.1100, 1.1000, 1.1040), QUIET]).trades)
    assert (trade.side, trade.volume, trade.entry_time, trade.entry_price) == (
        "buy",
        0.01,
        START + 2 * HOUR,
        1.105,
    )
    assert (trade.exit_reason, trade.exit_price) == ("sl", 1.1025)
    assert trade.exit_time == START + 2 * HOUR + timedelta(minutes=40)  # the bar's low: two thirds in
    assert trade.profit == pytest.approx(-2.5)


def test_the_target_fills_at_the_target_when_only_it_is_reached(tmp_path: Path) -> None:
    trade = only(replay_bars(tmp_path, [QUIET, SIGNAL, (1.1050, 1.1095, 1.1030, 1.1080)]).trades)
    assert (trade.exit_reason, trade.exit_price, trade.profit) == ("tp", 1.109, 4.0)


def test_a_gap_through_the_stop_fills_at_the_open(tmp_path: Path) -> None:
    bars = [QUIET, SIGNAL, (1.1050, 1.1070, 1.1040, 1.1045), (1.1000, 1.1010, 1.0980, 1.1005), QUIET]
    trade = only(replay_bars(tmp_path, bars).trades)
    assert (trade.exit_reason, trade.exit_price, trade.exit_time) == ("sl", 1.1, START + 3 * HOUR)
    assert trade.profit == pytest.approx(-5.0)


def test_a_sell_fills_at_the_bid_and_is_stopped_on_the_ask(tmp_path: Path) -> None:
    # Spread 5 points. Sell signal on bar 1's close (below 1.0960); filled at bar 2's bid open 1.0950:
    # SL 1.0975, TP 1.0910. Bars 2 and 3 keep their ask highs (1.09715, 1.09725) below the stop; bar
    # 4's bid high 1.09748 is below it too, but its ask high 1.09753 is not: stopped on the ask.
    bars = [
        (1.1000, 1.1010, 1.0990, 1.1000),
        (1.1000, 1.1005, 1.0950, 1.0955),
        (1.0950, 1.0971, 1.0940, 1.0960),
        (1.0960, 1.0972, 1.0950, 1.0965),
        (1.0965, 1.09748, 1.0950, 1.0960),
        (1.0960, 1.0965, 1.0955, 1.0960),
    ]
    path = write_bars(tmp_path / "EURUSD_H1.csv", bars, spread=5)
    trade = only(run_replay(cross_strategy(level=1.0960, side="sell"), path).trades)
    assert (trade.side, trade.entry_price, trade.entry_time) == ("sell", 1.095, START + 2 * HOUR)
    assert (trade.exit_reason, trade.exit_price, trade.exit_time) == (
        "sl",
        1.0975,
        START + 4 * HOUR + timedelta(minutes=20),  # bar 4 is bearish: its high comes first
    )
    assert trade.profit == pytest.approx(-2.5)


def test_a_position_still_open_at_the_end_closes_at_the_last_close(tmp_path: Path) -> None:
    bars = [QUIET, SIGNAL, (1.1050, 1.1070, 1.1040, 1.1045), (1.1045, 1.1060, 1.1035, 1.1058)]
    trade = only(replay_bars(tmp_path, bars).trades)
    assert (trade.exit_reason, trade.exit_price) == ("end", 1.1058)
    assert trade.exit_time == START + 4 * HOUR - timedelta(seconds=1)  # the last bar's close tick
    assert trade.profit == pytest.approx(0.8)


def test_a_signal_on_the_last_bar_is_never_filled(tmp_path: Path) -> None:
    assert replay_bars(tmp_path, [QUIET, QUIET, SIGNAL]).trades == ()


def test_the_exit_condition_closes_at_the_next_open(tmp_path: Path) -> None:
    leave = {
        "logic": "AND",
        "conditions": [{"indicator": "close", "condition": "less_than", "value": 1.1040}],
    }
    bars = [
        QUIET,
        SIGNAL,
        (1.1050, 1.1070, 1.1040, 1.1055),
        (1.1055, 1.1065, 1.1030, 1.1035),  # closes below 1.1040: the exit condition holds
        (1.1032, 1.1040, 1.1030, 1.1038),  # closed at this open, at the bid
        QUIET,
    ]
    exit_rules = {
        "stopLoss": {"type": "pips", "value": 25},
        "takeProfit": {"type": "pips", "value": 40},
        "conditions": leave,
    }
    trade = only(replay_bars(tmp_path, bars, exit=exit_rules).trades)
    assert (trade.exit_reason, trade.exit_price, trade.exit_time) == ("signal", 1.1032, START + 4 * HOUR)
    assert trade.profit == pytest.approx(-1.8)


def test_a_partial_exit_is_a_row_of_its_own_and_moves_the_stop(tmp_path: Path) -> None:
    exit_rules = {
        "stopLoss": {"type": "pips", "value": 25},
        "partialExits": {
            "enabled": True,
            "levels": [{"atR": 1.0, "closePercent": 50, "moveStopTo": "breakeven"}],
        },
    }
    bars = [
        QUIET,
        SIGNAL,
        (1.1050, 1.1080, 1.1045, 1.1070),  # the high passes 1R (1.1075): half is taken at the next open
        (1.1072, 1.1078, 1.1060, 1.1065),  # 0.01 closed at 1.1072; the stop moves to 1.1050
        (1.1065, 1.1068, 1.1045, 1.1050),  # the low reaches the moved stop: the rest closes there
        QUIET,
    ]
    result = replay_bars(tmp_path, bars, exit=exit_rules, riskManagement={"lotSize": 0.02, "maxPositions": 1})
    partial, rest = result.trades
    assert partial.ticket == rest.ticket
    assert (partial.exit_reason, partial.volume, partial.exit_price, partial.exit_time) == (
        "partial",
        0.01,
        1.1072,
        START + 3 * HOUR,
    )
    assert partial.profit == pytest.approx(2.2)
    assert (rest.exit_reason, rest.volume, rest.exit_price) == ("sl", 0.01, 1.105)
    assert rest.profit == 0.0
    assert result.summary.trades == 2 and result.summary.wins == 1 and result.summary.losses == 0
    assert result.summary.profit_factor is None  # nothing lost: no ratio


# ------------------------------------------------------------------------------ the fast-forward


def _deals(mt5: SimTerminal) -> tuple[Any, ...]:
    found = mt5.history_deals_get(0, 2**40)
    assert found is not None, mt5.last_error()
    return found


def _state(mt5: SimTerminal) -> tuple[Any, ...]:
    account = mt5.account_info()
    positions = mt5.positions_get()
    assert account is not None and positions is not None
    return (_deals(mt5), account.balance, account.equity, positions, mt5.replay_index, mt5.current_time)


class Stepper:
    """A stepped terminal moved only by open_next_bar() / finish_bar(), one bar at a time."""

    def __init__(self, mt5: SimTerminal) -> None:
        self.mt5 = mt5
        self.bar_open = False

    def step_to(self, index: int) -> None:
        """What advance_to(index) stands for."""
        if self.bar_open:
            self.mt5.finish_bar()
        while self.mt5.replay_index + 1 < index:
            assert self.mt5.open_next_bar()
            self.mt5.finish_bar()
        self.bar_open = index < self.mt5.replay_length
        if self.bar_open:
            assert self.mt5.open_next_bar()


order_plans = st.lists(
    st.tuples(
        st.integers(min_value=0, max_value=12),  # bars until this order (0: at the same open)
        st.booleans(),  # buy?
        st.one_of(st.none(), st.integers(min_value=3, max_value=60)),  # stop, pips
        st.one_of(st.none(), st.integers(min_value=3, max_value=90)),  # target, pips
    ),
    min_size=1,
    max_size=6,
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(first=st.integers(min_value=0, max_value=4500), plans=order_plans, tail=st.integers(0, 40))
def test_advance_to_equals_stepping_bar_by_bar(
    eurusd: Rates, first: int, plans: list[Any], tail: int
) -> None:
    """Several positions open at once on real bars: the fast-forward makes the same deals, balance
    and positions as finish_bar()/open_next_bar() one bar at a time, at every stop and at the end."""
    rates = eurusd[first : first + 120]
    stepped, jumped = (
        SimTerminal(data=rates, symbol="EURUSD", timeframe="H1", replay="stepped") for _ in range(2)
    )
    assert stepped.initialize() and jumped.initialize()
    stepper = Stepper(stepped)
    bar = 0
    for wait, buy, stop, target in plans:
        bar = min(bar + wait, len(rates) - 1)
        if bar > jumped.replay_index:
            stepper.step_to(bar)
            jumped.advance_to(bar)
        assert _state(stepped) == _state(jumped)
        tick = jumped.symbol_info_tick("EURUSD")
        assert tick is not None
        price = tick.ask if buy else tick.bid
        sign = -1 if buy else 1
        request = {
            "action": 1,
            "symbol": "EURUSD",
            "volume": 0.01,
            "type": 0 if buy else 1,
            "sl": round(price + sign * stop * 0.0001, 5) if stop else 0.0,
            "tp": round(price - sign * target * 0.0001, 5) if target else 0.0,
        }
        results = stepped.order_send(request), jumped.order_send(request)
        assert results[0] is not None and results[1] is not None
        assert results[0].retcode == results[1].retcode == 10009, results[1].comment
    end = min(jumped.replay_index + 1 + tail, len(rates))
    if end > jumped.replay_index:
        stepper.step_to(end)
        jumped.advance_to(end)
    assert _state(stepped) == _state(jumped)
    stepper.step_to(len(rates))
    deals = jumped.advance_to(len(rates))
    assert _state(stepped) == _state(jumped)
    assert all(d.reason in (jumped.DEAL_REASON_SL, jumped.DEAL_REASON_TP) for d in deals)


def test_advance_to_refuses_to_go_back_or_past_the_end(eurusd: Rates) -> None:
    mt5 = SimTerminal(data=eurusd[:50], symbol="EURUSD", timeframe="H1", replay="stepped")
    assert mt5.initialize()
    mt5.advance_to(10)
    with pytest.raises(ValueError, match="at bar 10 of 50"):
        mt5.advance_to(10)
    with pytest.raises(ValueError, match="at most 50"):
        mt5.advance_to(51)
    mt5.advance_to(50)
    assert mt5.replay_index == 49 and not mt5.open_next_bar()
    assert mt5.current_time == datetime.fromtimestamp(int(eurusd["time"][49]) + 3599, UTC)


def test_advance_to_steps_exactly_while_another_symbol_is_held(eurusd: Rates) -> None:
    """A position on a walked symbol is judged on its own ticks: advance_to then steps bar by bar."""
    stepped, jumped = (
        SimTerminal(data=eurusd[:80], symbol="EURUSD", timeframe="H1", replay="stepped") for _ in range(2)
    )
    assert stepped.initialize() and jumped.initialize()
    stepper = Stepper(stepped)
    stepper.step_to(5)
    jumped.advance_to(5)
    for mt5 in (stepped, jumped):
        gbp = mt5.symbol_info_tick("GBPUSD")
        eur = mt5.symbol_info_tick("EURUSD")
        assert gbp is not None and eur is not None
        for symbol, ask in (("GBPUSD", gbp.ask), ("EURUSD", eur.ask)):
            sent = mt5.order_send(
                {
                    "action": 1,
                    "symbol": symbol,
                    "volume": 0.1,
                    "type": 0,
                    "sl": round(ask - 0.0008, 5),
                    "tp": round(ask + 0.0008, 5),
                }
            )
            assert sent is not None and sent.retcode == 10009, sent
    stepper.step_to(60)
    deals = jumped.advance_to(60)
    assert _state(stepped) == _state(jumped)
    assert {d.symbol for d in deals} == {"GBPUSD", "EURUSD"}  # both were stopped out on the way


def test_replayed_rates_are_checked_as_a_file_is(eurusd: Rates) -> None:
    def terminal(rates: Any, **options: Any) -> SimTerminal:
        return SimTerminal(data=rates, replay="stepped", **{"symbol": "EURUSD", **options})

    with pytest.raises(ValueError, match="pass symbol="):
        SimTerminal(data=eurusd[:10], replay="stepped")
    with pytest.raises(ValueError, match="missing field"):
        terminal(np.zeros(3, dtype=[("time", "<i8"), ("open", "<f8")]))
    broken = eurusd[:10].copy()
    broken["high"][4] = broken["low"][4] - 0.001
    with pytest.raises(ValueError, match="row 4: high is below"):
        terminal(broken)
    backwards = eurusd[:10].copy()
    backwards["time"][6] = backwards["time"][5]
    with pytest.raises(ValueError, match=r"row 6: time .* is not after"):
        terminal(backwards)
    with pytest.raises(ValueError, match=r"less than one H4 bar \(the bars are 3600 s \(H1 bars\), not H4\)"):
        terminal(eurusd[:10], timeframe="H4")
    assert terminal(eurusd[:10]).replay_timeframe == "H1"  # told by the spacing


def test_progress_is_reported_up_to_the_last_bar(eurusd: Rates) -> None:
    seen: list[tuple[int, int]] = []
    run_replay(seed_strategy_json(), eurusd[:600], progress=lambda done, total: seen.append((done, total)))
    assert seen[-1] == (600, 600)
    assert all(total == 600 for _, total in seen) and [done for done, _ in seen] == sorted(
        done for done, _ in seen
    )


def test_the_progress_bar_draws_on_one_line_and_clears_it() -> None:
    stream = io.StringIO()
    bar = ProgressBar(stream)
    bar(50, 100)
    bar(60, 100)  # within a tenth of a second: not redrawn
    bar(100, 100)  # the end is always drawn
    text = stream.getvalue()
    assert text.count("\r") == 2 and "50%" in text and "100,000" not in text and "100/100 bars" in text
    bar.clear()
    assert stream.getvalue().endswith("\r\033[K")


# ------------------------------------------------------------------------------ the command


def run_cli(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = replay_main(argv)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.fixture
def files(tmp_path: Path) -> tuple[Path, Path]:
    strategy = tmp_path / "seed.json"
    strategy.write_text(json.dumps(seed_strategy_json()))
    bars = tmp_path / "EURUSD_H1.csv"
    write_replay_csv(load_eurusd().iloc[:1200], bars)
    return strategy, bars


def test_json_output_has_the_contract_shape_and_summary_maths(
    files: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    strategy, bars = files
    code, out, err = run_cli([str(strategy), "--data", str(bars), "--json"], capsys)
    assert code == 0, err
    report = json.loads(out)
    assert list(report) == ["symbol", "timeframe", "bars", "seconds", "bars_per_second", "trades", "summary"]
    assert (report["symbol"], report["timeframe"], report["bars"]) == ("EURUSD", "H1", 1200)
    assert report["seconds"] > 0 and report["bars_per_second"] == pytest.approx(
        1200 / report["seconds"], rel=1e-3
    )
    trades = report["trades"]
    assert len(trades) > 10
    keys = [
        "ticket",
        "side",
        "volume",
        "entry_time",
        "entry_price",
        "exit_time",
        "exit_price",
        "exit_reason",
        "profit",
    ]
    assert all(list(trade) == keys for trade in trades)
    assert {trade["exit_reason"] for trade in trades} <= {"sl", "tp", "end"}
    for trade in trades:
        entry, leave = datetime.fromisoformat(trade["entry_time"]), datetime.fromisoformat(trade["exit_time"])
        assert entry.utcoffset() == timedelta(0) and entry <= leave
    profits = [trade["profit"] for trade in trades]
    balance, peak, drawdown = 10_000.0, 10_000.0, 0.0
    for profit in profits:  # in the order the trades closed, which is the order they are listed
        balance += profit
        peak = max(peak, balance)
        drawdown = max(drawdown, peak - balance)
    assert [trade["exit_time"] for trade in trades] == sorted(trade["exit_time"] for trade in trades)
    assert report["summary"] == {
        "trades": len(trades),
        "wins": sum(p > 0 for p in profits),
        "losses": sum(p < 0 for p in profits),
        "net_profit": pytest.approx(sum(profits), abs=0.005),
        "max_drawdown": pytest.approx(drawdown, abs=0.005),
        "profit_factor": pytest.approx(
            sum(p for p in profits if p > 0) / -sum(p for p in profits if p < 0), abs=1e-4
        ),
    }
    assert report["summary"]["max_drawdown"] > 0
    # stderr is no terminal here: no progress bar; only the refused entries (here one, by maxPositions).
    assert err.splitlines() == ["entries refused: 1", "  1 for maxPositions 3 reached (3 open)"]


def test_the_table_lists_the_trades_and_the_summary(
    files: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    strategy, bars = files
    code, out, _ = run_cli([str(strategy), "--data", str(bars)], capsys)
    assert code == 0
    lines = out.splitlines()
    assert lines[0].startswith("EURUSD H1: 1,200 bars replayed in")
    assert lines[2].split()[:3] == ["ticket", "side", "volume"]
    assert any(line.split()[1:3] == ["buy", "0.01"] for line in lines[4:])
    summary = next(line for line in lines if line.startswith("trades "))
    assert "net profit" in summary and "max drawdown" in summary
    # An exit inside its bar (a stop at 22:40 on H1) is explained under the table.
    assert lines[lines.index(summary) - 2] == TICK_TIMES_NOTE
    assert "a third and two thirds into it" in TICK_TIMES_NOTE


def test_symbol_timeframe_and_spread_options(
    files: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    strategy, bars = files
    code, out, err = run_cli(
        [
            str(strategy),
            "--data",
            str(bars),
            "--symbol",
            "EURUSD",
            "--timeframe",
            "h1",
            "--spread",
            "0",
            "--json",
        ],
        capsys,
    )
    assert code == 0, err
    wide = json.loads(out)
    code, out, _ = run_cli([str(strategy), "--data", str(bars), "--json"], capsys)
    # The file has a spread column (10 points): --spread only fills rows without one.
    assert json.loads(out)["trades"] == wide["trades"]


BAD_STRATEGY = {
    "strategyId": "bad",
    "symbol": "EURUSD",
    "timeframe": "H1",
    "rules": {
        "entry": {"conditions": [{"indicator": "emma_9", "condition": "crosses_above", "value": "ema_21"}]}
    },
}


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("strategy field", "rules.entry.conditions[0].indicator: unknown indicator 'emma_9'"),
        ("no strategy file", "no such file"),
        ("no data file", "cannot read the bars to replay"),
        ("bad csv", "line 3: high 'x' is not a number"),
        ("timeframe mismatch", "the bars are 14400 s (H4 bars) apart, but the timeframe is H1"),
        ("finer bars", "less than one H4 bar (the bars are 3600 s (H1 bars), not H4)"),
        ("bad spread", "--spread: must be a whole number of points >= 0"),
        ("no data option", "the following arguments are required: --data"),
    ],
)
def test_bad_inputs_exit_2_with_the_reason(
    tmp_path: Path, files: tuple[Path, Path], capsys: pytest.CaptureFixture[str], case: str, message: str
) -> None:
    strategy, bars = files
    argv = [str(strategy), "--data", str(bars)]
    if case == "strategy field":
        strategy.write_text(json.dumps(BAD_STRATEGY))
    elif case == "no strategy file":
        argv[0] = str(tmp_path / "missing.json")
    elif case == "no data file":
        argv[2] = str(tmp_path / "EURUSD_missing.csv")
    elif case == "bad csv":
        bars.write_text(
            "time,open,high,low,close\n2024-01-02T00:00,1.1,1.2,1.0,1.1\n2024-01-02T01:00,1.1,x,1,1\n"
        )
    elif case == "timeframe mismatch":  # H4 bars for the H1 strategy
        bars.write_text(
            "time,open,high,low,close\n"
            + "".join(f"2024-01-02T{hour:02d}:00Z,1.1,1.2,1.0,1.1\n" for hour in (0, 4, 8, 12))
        )
    elif case == "finer bars":
        argv += ["--timeframe", "H4"]
    elif case == "bad spread":
        argv += ["--spread", "-1"]
    else:
        argv = argv[:1]
    code, out, err = run_cli(argv, capsys)
    assert code == 2
    assert message in err
    assert out == ""


def test_a_strategy_the_terminal_cannot_trade_is_refused_with_its_field(
    files: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    strategy, bars = files
    definition = seed_strategy_json()
    definition["rules"]["riskManagement"]["lotSize"] = 0.001  # below EURUSD's minimum of 0.01
    strategy.write_text(json.dumps(definition))
    code, _, err = run_cli([str(strategy), "--data", str(bars)], capsys)
    assert code == 2
    assert "invalid strategy" in err and "rules.riskManagement.lotSize" in err


def test_run_replay_refuses_a_bad_strategy_before_reading_the_bars(tmp_path: Path) -> None:
    with pytest.raises(StrategyError, match="emma_9"):
        run_replay(BAD_STRATEGY, tmp_path / "never_read.csv")


def test_an_engine_failure_stops_the_replay_instead_of_passing_for_a_result(
    files: tuple[Path, Path], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    async def broken(self: StrategyRunner, *args: Any, **kwargs: Any) -> None:
        raise RuntimeError("sizing exploded")

    monkeypatch.setattr(StrategyRunner, "_enter", broken)
    strategy, bars = files
    with pytest.raises(ReplayError, match="the engine failed at bar"):
        run_replay(seed_strategy_json(), bars)
    code, out, err = run_cli([str(strategy), "--data", str(bars), "--json"], capsys)
    assert (code, out) == (1, "")
    assert "a strategy failed to take the closed H1 bar of EURUSD" in err


def test_bars_named_after_another_symbol_are_refused_unless_the_symbol_is_given(
    tmp_path: Path, files: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    strategy, bars = files
    usdjpy = tmp_path / "USDJPY_H1.csv"
    usdjpy.write_bytes(bars.read_bytes())  # EURUSD prices in a file named after USDJPY
    code, _, err = run_cli([str(strategy), "--data", str(usdjpy)], capsys)
    assert code == 2
    assert "USDJPY_H1.csv: its name says USDJPY bars, but the strategy trades EURUSD" in err
    assert "give --symbol USDJPY" in err
    code, _, err = run_cli([str(strategy), "--data", str(usdjpy), "--symbol", "EURUSD"], capsys)
    assert code == 0, err  # the trader says what the bars are: taken at their word
    neutral = tmp_path / "bars.csv"
    neutral.write_bytes(bars.read_bytes())
    code, _, err = run_cli([str(strategy), "--data", str(neutral)], capsys)
    assert code == 0, err


def test_a_net_result_that_rounds_to_zero_is_never_shown_as_minus_zero() -> None:
    when = datetime(2024, 1, 2, tzinfo=UTC)
    losing = ReplayTrade(
        ticket=1,
        side="buy",
        volume=0.01,
        entry_time=when,
        entry_price=1.1,
        exit_time=when + timedelta(hours=1),
        exit_price=1.1,
        exit_reason="sl",
        profit=-0.004,
    )
    summary = summarize_trades((losing,), 10_000.0)
    assert f"{summary.net_profit:,.2f}" == "0.00" and json.dumps(summary.net_profit) == "0.0"
    assert f"{summary.max_drawdown:,.2f}" == "0.00"


def test_refused_entries_are_counted_by_reason_beside_the_trades(
    files: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    strategy, bars = files
    wrong_stop = seed_strategy_json()
    wrong_stop["rules"]["exit"]["stopLoss"] = {"type": "price", "value": 2.0}  # above every buy's entry
    strategy.write_text(json.dumps(wrong_stop))
    code, out, err = run_cli([str(strategy), "--data", str(bars)], capsys)
    assert code == 0, err
    lines = out.splitlines()
    assert "(no trades)" in lines and "profit factor n/a (no trades)" in lines[-3]
    assert lines[-2].startswith("entries refused: ")
    refused = int(lines[-2].removeprefix("entries refused: ").replace(",", ""))
    assert refused > 5
    assert lines[-1].startswith(
        f"  {refused:,} for stop/target; the first: stop loss price 2.00000 is not below"
    )
    # With --json the document keeps the contract's shape; the refusals go to stderr.
    code, out, err = run_cli([str(strategy), "--data", str(bars), "--json"], capsys)
    assert code == 0
    assert list(json.loads(out)) == [
        "symbol",
        "timeframe",
        "bars",
        "seconds",
        "bars_per_second",
        "trades",
        "summary",
    ]
    assert f"entries refused: {refused:,}" in err
    # The seed strategy's own stop: its one refusal on these bars is maxPositions', none by its stop.
    strategy.write_text(json.dumps(seed_strategy_json()))
    code, out, _ = run_cli([str(strategy), "--data", str(bars)], capsys)
    assert code == 0 and out.splitlines()[-2:] == [
        "entries refused: 1",
        "  1 for maxPositions 3 reached (3 open)",
    ]
