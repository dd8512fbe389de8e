"""The simulator's prices: a deterministic seeded walk with history from the start, consistent across
timeframes and ticking with the clock; and replayed CSV bars, released by the clock or stepped."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from mt5console.core.broker.rates import RATES_DTYPE
from mt5console.core.broker.sim import SimTerminal
from tests.helpers import WEDNESDAY, Clock, deal_history, open_positions


def started(seed: int = 1, clock: Clock | None = None, **options: Any) -> SimTerminal:
    terminal = SimTerminal(seed=seed, clock=clock or Clock(WEDNESDAY), **options)
    assert terminal.initialize()
    return terminal


def rates(mt5: SimTerminal, symbol: str, timeframe: int, count: int, start: int = 0) -> Any:
    found = mt5.copy_rates_from_pos(symbol, timeframe, start, count)
    assert found is not None, mt5.last_error()
    return found


def aggregate(fine: Any, coarse: Any, seconds: int) -> list[tuple[Any, ...]]:
    """Each coarse bar rebuilt from the fine bars inside it, by hand."""
    rebuilt = []
    for bar in coarse:
        inside = fine[(fine["time"] >= bar["time"]) & (fine["time"] < bar["time"] + seconds)]
        rebuilt.append(
            (
                bar["time"],
                inside["open"][0],
                inside["high"].max(),
                inside["low"].min(),
                inside["close"][-1],
                inside["tick_volume"].sum(),
                inside["spread"][0],
            )
        )
    return rebuilt


def as_tuples(bars: Any) -> list[tuple[Any, ...]]:
    fields = ("time", "open", "high", "low", "close", "tick_volume", "spread")
    return [tuple(bar[f] for f in fields) for bar in bars]


# ------------------------------------------------------------------------------------- the walk


def test_a_seed_gives_the_same_history_and_ticks() -> None:
    one, same, other = started(7), started(7), started(8)
    for timeframe in (one.TIMEFRAME_M1, one.TIMEFRAME_H1, one.TIMEFRAME_D1):
        assert np.array_equal(rates(one, "EURUSD", timeframe, 500), rates(same, "EURUSD", timeframe, 500))
        assert not np.array_equal(
            rates(one, "EURUSD", timeframe, 500), rates(other, "EURUSD", timeframe, 500)
        )
    since = WEDNESDAY - timedelta(minutes=10)
    ticks = [t.copy_ticks_from("XAUUSD", since, 1000, t.COPY_TICKS_ALL) for t in (one, same)]
    assert ticks[0] is not None and ticks[1] is not None and len(ticks[0]) > 300  # ten minutes' worth
    assert np.array_equal(ticks[0], ticks[1])
    assert not np.array_equal(
        rates(one, "EURUSD", one.TIMEFRAME_H1, 50), rates(one, "GBPUSD", one.TIMEFRAME_H1, 50)
    )


def test_prices_depend_on_the_time_not_on_when_they_were_asked_for() -> None:
    early_clock = Clock(WEDNESDAY)
    early = started(3, early_clock)
    before = rates(early, "USDJPY", early.TIMEFRAME_M5, 300)
    early_clock.advance(hours=3)  # the early terminal lives through three hours of ticks...
    late = started(3, Clock(WEDNESDAY + timedelta(hours=3)))  # ...the late one starts after them
    for timeframe in (early.TIMEFRAME_M1, early.TIMEFRAME_M5, early.TIMEFRAME_H1, early.TIMEFRAME_D1):
        assert np.array_equal(rates(early, "USDJPY", timeframe, 400), rates(late, "USDJPY", timeframe, 400))
    # What the early terminal showed as complete bars is still what history says.
    history = rates(late, "USDJPY", late.TIMEFRAME_M5, 300 + 36)[:-37]
    assert np.array_equal(history, before[:-1])


@pytest.mark.parametrize("symbol", ["EURUSD", "US500"])
def test_history_from_the_start_for_every_timeframe(symbol: str) -> None:
    mt5 = started()
    for timeframe in (mt5.TIMEFRAME_M1, mt5.TIMEFRAME_M5, mt5.TIMEFRAME_M15, mt5.TIMEFRAME_M30):
        assert len(rates(mt5, symbol, timeframe, 3000)) == 3000
    for timeframe in (mt5.TIMEFRAME_H1, mt5.TIMEFRAME_H4, mt5.TIMEFRAME_D1):
        bars = rates(mt5, symbol, timeframe, 3000)
        assert len(bars) == 3000 and np.all(np.diff(bars["time"]) > 0)
    assert len(rates(mt5, symbol, mt5.TIMEFRAME_W1, 5000)) >= 500
    assert len(rates(mt5, symbol, mt5.TIMEFRAME_MN1, 5000)) >= 300


def test_higher_timeframes_are_the_aggregates_of_lower_ones() -> None:
    mt5 = started(4)
    m1 = rates(mt5, "EURUSD", mt5.TIMEFRAME_M1, 3000)
    h1 = rates(mt5, "EURUSD", mt5.TIMEFRAME_H1, 40)
    complete_hours = h1[h1["time"] >= m1["time"][0] // 3600 * 3600 + 3600]
    assert len(complete_hours) == 40  # 3000 minutes cover them all
    assert aggregate(m1, complete_hours, 3600) == as_tuples(complete_hours)  # the forming hour included
    d1 = rates(mt5, "EURUSD", mt5.TIMEFRAME_D1, 20)
    h1_long = rates(mt5, "EURUSD", mt5.TIMEFRAME_H1, 24 * 21)
    days = d1[d1["time"] >= h1_long["time"][0]]
    assert aggregate(h1_long, days, 86_400) == as_tuples(days)
    m5 = rates(mt5, "EURUSD", mt5.TIMEFRAME_M5, 100)
    assert aggregate(m1, m5, 300) == as_tuples(m5)
    for bar in rates(mt5, "EURUSD", mt5.TIMEFRAME_M1, 500):
        assert bar["low"] <= min(bar["open"], bar["close"]) <= max(bar["open"], bar["close"]) <= bar["high"]


def test_the_walk_looks_like_the_market() -> None:
    mt5 = started(2)
    levels = {"EURUSD": (0.85, 1.35), "USDJPY": (115, 185), "XAUUSD": (1600, 3300), "US500": (3500, 7000)}
    for symbol, (low, high) in levels.items():
        closes = rates(mt5, symbol, mt5.TIMEFRAME_D1, 2000)["close"]
        assert low < closes.min() and closes.max() < high, symbol
    returns = np.diff(np.log(rates(mt5, "EURUSD", mt5.TIMEFRAME_D1, 1500)["close"]))
    assert 0.003 < returns.std() < 0.008  # about 0.5 % a day
    ticks = mt5.copy_ticks_range("EURUSD", WEDNESDAY - timedelta(hours=1), WEDNESDAY, mt5.COPY_TICKS_ALL)
    assert ticks is not None
    spread = np.round((ticks["ask"] - ticks["bid"]) / 1e-5)
    assert spread.min() >= 8 and spread.max() <= 13 and 9.5 < spread.mean() < 11.5
    gaps = np.diff(ticks["time_msc"])
    assert gaps.min() > 0 and 250 <= np.median(gaps) <= 1000


def test_ticks_arrive_as_the_clock_runs_and_build_the_forming_bars() -> None:
    clock = Clock(datetime(2024, 3, 6, 10, 30, 0, 1000, tzinfo=UTC))
    mt5 = started(6, clock)
    first = mt5.symbol_info_tick("GBPUSD")
    assert first is not None
    for _ in range(6):
        clock.advance(seconds=5)
        tick = mt5.symbol_info_tick("GBPUSD")
        assert tick is not None and first.time_msc < tick.time_msc <= clock.now.timestamp() * 1000
        bar = rates(mt5, "GBPUSD", mt5.TIMEFRAME_M1, 1)[0]
        minute = mt5.copy_ticks_range(
            "GBPUSD", datetime(2024, 3, 6, 10, 30, tzinfo=UTC), clock.now, mt5.COPY_TICKS_ALL
        )
        assert minute is not None
        assert bar["time"] == int(datetime(2024, 3, 6, 10, 30, tzinfo=UTC).timestamp())
        assert (bar["open"], bar["close"]) == (minute["bid"][0], minute["bid"][-1]) and bar[
            "close"
        ] == tick.bid
        assert (bar["high"], bar["low"]) == (minute["bid"].max(), minute["bid"].min())
        assert bar["tick_volume"] == len(minute)
        first = tick
    clock.advance(minutes=1)
    later = rates(mt5, "GBPUSD", mt5.TIMEFRAME_M1, 2)
    assert later["time"][-1] == later["time"][0] + 60


def test_the_index_has_no_bars_while_closed() -> None:
    mt5 = started(1, Clock(datetime(2024, 3, 10, 12, tzinfo=UTC)))  # a Sunday, before the 22:00 open
    h1 = rates(mt5, "US500", mt5.TIMEFRAME_H1, 100)
    hours = (h1["time"] // 3600) % 24
    weekdays = (h1["time"] // 86_400 + 3) % 7  # Monday = 0
    assert not np.any(hours == 21)  # the daily break
    assert not np.any(weekdays == 5)  # Saturday
    assert h1["time"][-1] == int(datetime(2024, 3, 8, 20, tzinfo=UTC).timestamp())  # Friday's last hour
    tick = mt5.symbol_info_tick("US500")
    assert tick is not None and tick.bid == h1["close"][-1]


# ------------------------------------------------------------------------------------- replayed bars

CSV_ROWS = [
    # time, open, high, low, close, spread
    ("2024-01-02T00:00:00Z", 1.1000, 1.1010, 1.0990, 1.1005, 20),
    ("2024-01-02T01:00:00Z", 1.1005, 1.1050, 1.0950, 1.1000, 20),
    ("2024-01-02T02:00:00Z", 1.0900, 1.0950, 1.0890, 1.0940, 20),
    ("2024-01-02T03:00:00Z", 1.0940, 1.0960, 1.0930, 1.0950, 20),
]


def write_csv(tmp_path: Path, rows: list[tuple[Any, ...]] = CSV_ROWS, name: str = "EURUSD_H1.csv") -> Path:
    path = tmp_path / name
    lines = ["time,open,high,low,close,spread"] + [",".join(str(v) for v in row) for row in rows]
    path.write_text("\n".join(lines) + "\n")
    return path


def at(hour: int, minute: int = 0, second: int = 0) -> datetime:
    return datetime(2024, 1, 2, hour, minute, second, tzinfo=UTC)


def test_replayed_bars_are_released_as_the_clock_passes(tmp_path: Path) -> None:
    clock = Clock(at(2, 30))
    mt5 = started(1, clock, data=write_csv(tmp_path))  # symbol from the name, timeframe from the spacing
    bars = rates(mt5, "EURUSD", mt5.TIMEFRAME_H1, 10)
    assert as_tuples(bars[:2]) == [(int(at(h).timestamp()), *CSV_ROWS[h][1:5], 4, 20) for h in (0, 1)]
    # Bar 2 is bullish: open, then low a third in, then high two thirds in. At 02:30 the low is in.
    assert as_tuples(bars[2:]) == [(int(at(2).timestamp()), 1.09, 1.09, 1.089, 1.089, 2, 20)]
    tick = mt5.symbol_info_tick("EURUSD")
    assert tick is not None and (tick.bid, tick.ask) == (1.089, 1.0892)  # ask = bid + 20 points
    assert tick.time_msc == int(at(2, 20).timestamp() * 1000)
    bought = mt5.order_send({"action": 1, "symbol": "EURUSD", "volume": 0.1, "type": 0, "tp": 1.0945})
    assert bought is not None and bought.retcode == mt5.TRADE_RETCODE_DONE and bought.price == 1.0892
    clock.now = at(2, 45)  # the high (1.0950) has come: the TP fills at that tick's bid
    assert open_positions(mt5) == ()
    (deal,) = (d for d in deal_history(mt5, position=bought.order) if d.entry == mt5.DEAL_ENTRY_OUT)
    assert (deal.reason, deal.price, deal.time_msc) == (
        mt5.DEAL_REASON_TP,
        1.095,
        int(at(2, 40).timestamp() * 1000),
    )
    clock.now = at(4, 30)  # after the data: every bar is history, the market is closed
    assert as_tuples(rates(mt5, "EURUSD", mt5.TIMEFRAME_H1, 10)) == [
        (int(at(h).timestamp()), *CSV_ROWS[h][1:5], 4, 20) for h in range(4)
    ]
    refused = mt5.order_send({"action": 1, "symbol": "EURUSD", "volume": 0.1, "type": 0})
    assert refused is not None and refused.retcode == mt5.TRADE_RETCODE_MARKET_CLOSED
    h4 = rates(mt5, "EURUSD", mt5.TIMEFRAME_H4, 5)
    assert as_tuples(h4) == [(int(at(0).timestamp()), 1.1, 1.105, 1.089, 1.095, 16, 20)]
    assert mt5.copy_rates_from_pos("EURUSD", mt5.TIMEFRAME_M1, 0, 10) is None
    assert mt5.last_error()[0] == mt5.RES_E_NOT_FOUND and "H1" in mt5.last_error()[1]
    assert rates(mt5, "GBPUSD", mt5.TIMEFRAME_H1, 10).size == 10  # the other symbols still walk


def test_stepped_replay_fills_at_the_open_and_takes_the_stop_first(tmp_path: Path) -> None:
    mt5 = SimTerminal(
        seed=1, data=write_csv(tmp_path, name="bars.csv"), symbol="EURUSD", timeframe="H1", replay="stepped"
    )
    assert mt5.initialize() and mt5.replay_length == 4 and mt5.replay_index == -1
    assert mt5.symbol_info_tick("EURUSD") is None  # no bar has opened yet
    assert rates(mt5, "EURUSD", mt5.TIMEFRAME_H1, 10).size == 0

    assert mt5.open_next_bar() is True
    assert as_tuples(rates(mt5, "EURUSD", mt5.TIMEFRAME_H1, 10)) == [
        (int(at(0).timestamp()), 1.1, 1.1, 1.1, 1.1, 1, 20)
    ]
    long = mt5.order_send(
        {"action": 1, "symbol": "EURUSD", "volume": 0.1, "type": 0, "sl": 1.097, "tp": 1.103}
    )
    assert long is not None and long.price == 1.1002  # the open's ask: 1.1000 + 20 points
    assert mt5.finish_bar() == ()  # bar 0 reaches neither 1.0970 nor 1.1030
    assert as_tuples(rates(mt5, "EURUSD", mt5.TIMEFRAME_H1, 10)) == [
        (int(at(0).timestamp()), *CSV_ROWS[0][1:5], 4, 20)
    ]

    assert mt5.open_next_bar()
    short = mt5.order_send(
        {"action": 1, "symbol": "EURUSD", "volume": 0.1, "type": 1, "sl": 1.104, "tp": 1.098}
    )
    assert short is not None and short.price == 1.1005
    deals = mt5.finish_bar()  # bar 1 spans both levels of both positions: the stops are taken
    assert {(d.position_id, d.reason, d.price) for d in deals} == {
        (long.order, mt5.DEAL_REASON_SL, 1.097),
        (short.order, mt5.DEAL_REASON_SL, 1.104),
    }
    by_position = {d.position_id: d for d in deals}
    assert by_position[long.order].profit == round((1.097 - 1.1002) * 100_000 * 0.1, 2)
    assert by_position[long.order].time_msc == int(at(1, 40).timestamp() * 1000)  # bearish: low comes second

    # Bought at bar 1's close; bar 2 opens far below the stop: the stop fills at that open.
    gapped = mt5.order_send({"action": 1, "symbol": "EURUSD", "volume": 0.1, "type": 0, "sl": 1.096})
    assert gapped is not None and gapped.retcode == mt5.TRADE_RETCODE_DONE and gapped.price == 1.1002
    assert mt5.open_next_bar()
    (gap_deal,) = mt5.finish_bar()
    assert (gap_deal.reason, gap_deal.price, gap_deal.time_msc) == (
        mt5.DEAL_REASON_SL,
        1.09,
        int(at(2).timestamp() * 1000),
    )

    # A sell is judged on the ask (bid + 20 points): bar 3's bid low 1.0930 reaches a TP of 1.0931,
    # its ask low 1.0932 does not; its ask high 1.0962 reaches an SL of 1.0961, the bid high does not.
    assert mt5.open_next_bar()
    sell = mt5.order_send(
        {"action": 1, "symbol": "EURUSD", "volume": 0.1, "type": 1, "sl": 1.0961, "tp": 1.0931}
    )
    assert sell is not None and sell.retcode == mt5.TRADE_RETCODE_DONE
    (sell_deal,) = mt5.finish_bar()
    assert (sell_deal.reason, sell_deal.price) == (mt5.DEAL_REASON_SL, 1.0961)

    assert mt5.open_next_bar() is False and mt5.replay_index == 3
    with pytest.raises(RuntimeError):
        mt5.finish_bar()
    account = mt5.account_info()
    assert account is not None
    assert account.balance == round(10_000 + sum(d.profit for d in deal_history(mt5, 0, 2**31)[1:]), 2)


def test_stepping_needs_a_stepped_replay(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match="stepped"):
        SimTerminal(seed=1).open_next_bar()
    with pytest.raises(RuntimeError, match="stepped"):
        SimTerminal(seed=1, data=write_csv(tmp_path)).open_next_bar()
    stepped = SimTerminal(seed=1, data=write_csv(tmp_path), replay="stepped")
    assert stepped.open_next_bar()
    with pytest.raises(RuntimeError, match="finish_bar"):
        stepped.open_next_bar()


def test_csv_headers_as_common_tools_write_them(tmp_path: Path) -> None:
    pandas_style = tmp_path / "gold.csv"
    pandas_style.write_text(
        ",Open,High,Low,Close,Volume\n"
        "2024-01-02 00:00:00,2050.10,2052.00,2049.00,2051.50,120\n"
        "2024-01-02 00:15:00,2051.50,2053.25,2051.00,2053.00,80\n"
    )
    mt5 = started(1, Clock(at(12)), data=pandas_style, symbol="XAUUSD")
    bars = rates(mt5, "XAUUSD", mt5.TIMEFRAME_M15, 10)
    assert as_tuples(bars) == [
        (int(at(0).timestamp()), 2050.1, 2052.0, 2049.0, 2051.5, 120, 30),  # XAUUSD's typical spread
        (int(at(0, 15).timestamp()), 2051.5, 2053.25, 2051.0, 2053.0, 80, 30),
    ]
    epoch_semicolons = tmp_path / "USDJPY.csv"
    epoch_semicolons.write_text("<DATE>;<OPEN>;<HIGH>;<LOW>;<CLOSE>\n1704153600;141.0;141.5;140.5;141.2\n")
    mt5 = started(1, Clock(at(12) + timedelta(days=3)), data=epoch_semicolons, timeframe="D1", spread=5)
    (day,) = rates(mt5, "USDJPY", mt5.TIMEFRAME_D1, 1)
    assert (day["time"], day["close"], day["spread"]) == (1704153600, 141.2, 5)


def test_mt5s_own_export_with_separate_date_and_time_columns(tmp_path: Path) -> None:
    # MetaTrader 5's "Export bars" writes tab separated <DATE> and <TIME>, <TICKVOL> and <VOL>.
    exported = tmp_path / "EURUSD_H1.csv"
    exported.write_text(
        "<DATE>\t<TIME>\t<OPEN>\t<HIGH>\t<LOW>\t<CLOSE>\t<TICKVOL>\t<VOL>\t<SPREAD>\n"
        "2024.01.02\t00:00:00\t1.10400\t1.10450\t1.10350\t1.10420\t1200\t0\t5\n"
        "2024.01.02\t01:00\t1.10420\t1.10500\t1.10400\t1.10480\t1100\t0\t6\n"
    )
    mt5 = started(1, Clock(at(12)), data=exported)
    bars = rates(mt5, "EURUSD", mt5.TIMEFRAME_H1, 10)
    assert as_tuples(bars) == [
        (int(at(0).timestamp()), 1.104, 1.1045, 1.1035, 1.1042, 1200, 5),
        (int(at(1).timestamp()), 1.1042, 1.105, 1.104, 1.1048, 1100, 6),
    ]


MALFORMED = [
    ("", "empty"),
    ("time,open,high,low\n2024-01-02,1,1,1\n", r"missing column\(s\) close"),
    ("stamp,open,high,low,close\n2024-01-02,1,1,1,1\n", r"missing column\(s\) time"),
    ("time,open,high,low,close\n2024-01-02T00:00,1.1,abc,1.0,1.05\n", r"line 2: high 'abc' is not a number"),
    ("time,open,high,low,close\n2024-01-02T00:00,1.1,1.0,1.2,1.05\n", "line 2: high 1.0 is below"),
    ("time,open,high,low,close\n2024-01-02T00:00,1.1,1.2,1.15,1.12\n", "line 2: low 1.15 is above"),
    ("time,open,high,low,close\nyesterday,1.1,1.2,1.0,1.1\n", "line 2: time 'yesterday'"),
    (
        "time,open,high,low,close\n2024-01-02T01:00,1,1.2,0.9,1\n2024-01-02T00:00,1,1.2,0.9,1\n",
        "line 3: time .* is not after",
    ),
    ("time,open,high,low,close,spread\n2024-01-02T00:00,1.1,1.2,1.0,1.1,-3\n", "line 2: .*spread"),
    ("time,open,high,low,close\n2024-01-02T00:00,1.1,1.2,1.0\n", "line 2: 4 values for 5 columns"),
    ("time,open,high,low,close\n", "no bars"),
    (
        "time,open,high,low,close,Time\n2024-01-02T00:00,1,1.2,0.9,1,2024-01-03T00:00\n",
        "the header names 'time' \\(column 1\\) and 'Time' \\(column 6\\): keep one column 'time'",
    ),
    (
        "time,open,high,low,close\n2024-01-02T00:00,1,1.2,0.9,1\n2024-01-02T00:30,1,1.2,0.9,1\n",
        "line 3: bar starts 1800 s after the previous one, less than one H1 bar",
    ),
]


@pytest.mark.parametrize(("text", "message"), MALFORMED, ids=[m for _, m in MALFORMED])
def test_a_malformed_csv_is_refused_naming_the_fault(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "EURUSD.csv"
    path.write_text(text)
    with pytest.raises(ValueError, match=message):
        SimTerminal(seed=1, data=path, timeframe="H1")


def test_replay_arguments_are_checked(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="cannot tell which symbol"):
        SimTerminal(seed=1, data=write_csv(tmp_path, name="bars.csv"))
    with pytest.raises(ValueError, match="unknown symbol 'BTCUSD'"):
        SimTerminal(seed=1, data=write_csv(tmp_path), symbol="BTCUSD")
    with pytest.raises(ValueError, match="unknown timeframe"):
        SimTerminal(seed=1, data=write_csv(tmp_path), timeframe="H7")
    with pytest.raises(ValueError, match="pass data="):
        SimTerminal(seed=1, replay="stepped")
    with pytest.raises(ValueError, match="cannot read"):
        SimTerminal(seed=1, data=tmp_path / "EURUSD_missing.csv")


# ------------------------------------------------------------------------ replayed rates in memory


def hourly_rates(count: int = 12) -> np.ndarray:
    """EURUSD H1 rates from 2024-01-02 00:00, alternately bullish and bearish."""
    rates = np.zeros(count, dtype=RATES_DTYPE)
    rates["time"] = int(at(0).timestamp()) + np.arange(count) * 3600
    opens = 1.1 + 0.001 * np.arange(count)
    closes = opens + np.where(np.arange(count) % 2 == 0, 0.0004, -0.0004)
    rates["open"], rates["close"] = np.round(opens, 5), np.round(closes, 5)
    rates["high"] = np.round(np.maximum(opens, closes) + 0.0003, 5)
    rates["low"] = np.round(np.minimum(opens, closes) - 0.0002, 5)
    rates["tick_volume"] = 7 + np.arange(count)
    rates["spread"] = 3 + np.arange(count) % 5
    return rates


BAD_PRICES = [
    ("open", 3, float("nan"), "row 3: open np.float64(nan) is not a positive finite price"),
    ("high", 0, float("inf"), "row 0: high np.float64(inf) is not a positive finite price"),
    ("low", 11, 0.0, "row 11: low np.float64(0.0) is not a positive finite price"),
    ("close", 5, -1.1, "row 5: close np.float64(-1.1) is not a positive finite price"),
]


@pytest.mark.parametrize(("field", "row", "value", "message"), BAD_PRICES, ids=[b[0] for b in BAD_PRICES])
def test_replayed_rates_with_a_price_that_is_no_price_are_refused(
    field: str, row: int, value: float, message: str
) -> None:
    broken = hourly_rates()
    broken[field][row] = value
    with pytest.raises(ValueError, match=re.escape(message)):
        SimTerminal(seed=1, data=broken, symbol="EURUSD", replay="stepped")
    broken["open"][1] = float("nan")  # the first field named, in the order open, high, low, close
    with pytest.raises(ValueError, match="row 1: open"):
        SimTerminal(seed=1, data=broken, symbol="EURUSD", replay="stepped")


def test_replayed_rates_of_other_field_types_are_read_alike() -> None:
    rates = hourly_rates()
    narrow = np.zeros(
        len(rates),
        dtype=[("time", "<i4"), ("open", "<f4"), ("high", "<f4"), ("low", "<f4"), ("close", "<f4")],
    )
    for name in narrow.dtype.names or ():
        narrow[name] = rates[name]
    mt5 = SimTerminal(seed=1, data=narrow, symbol="EURUSD", replay="stepped", spread=7)
    served = mt5.replay_rates
    assert np.array_equal(served["time"], rates["time"])
    for name in ("open", "high", "low", "close"):  # float32 prices, rounded to EURUSD's five digits
        assert np.array_equal(served[name], np.round(narrow[name].astype(np.float64), 5))
    assert np.all(served["tick_volume"] == 4) and np.all(served["spread"] == 7)


def four_ticks(rates: np.ndarray) -> tuple[list[int], list[float], list[float]]:
    """The replay's ticks as its docstring tells them, bar by bar: the open at the bar's start, the
    low and the high a third and two thirds in (the high first on a bearish bar), the close a second
    before the bar's end; ask = bid + the bar's spread."""
    times: list[int] = []
    bids: list[float] = []
    asks: list[float] = []
    for bar in rates:
        start, spread = int(bar["time"]) * 1000, int(bar["spread"]) * 1e-5
        o, h, low, c = (float(bar[name]) for name in ("open", "high", "low", "close"))
        extremes = (low, h) if c >= o else (h, low)
        for offset, bid in zip((0, 1_200_000, 2_400_000, 3_599_000), (o, *extremes, c), strict=True):
            times.append(start + offset)
            bids.append(bid)
            asks.append(round(bid + spread, 5))
    return times, bids, asks


def test_the_replays_ticks_are_each_bars_open_extremes_and_close() -> None:
    rates = hourly_rates()
    times, bids, asks = four_ticks(rates)
    mt5 = SimTerminal(seed=1, data=rates, symbol="EURUSD", replay="stepped")
    assert mt5.initialize()
    mt5.advance_to(len(rates))
    everything = mt5.copy_ticks_range("EURUSD", at(0), at(23), mt5.COPY_TICKS_ALL)
    assert everything is not None
    assert everything["time_msc"].tolist() == times
    assert everything["bid"].tolist() == bids
    assert everything["ask"].tolist() == pytest.approx(asks, abs=1e-9)
    # From any moment, the next ``count`` of them: from inside a bar, from between two ticks, across
    # as many bars as the count reaches.
    for since in (times[0], times[1] - 1, times[6], times[9] + 1, times[17] + 500):
        for count in (1, 2, 3, 4, 5, 7, 9, 13, 40, 100):
            first = next(i for i, t in enumerate(times) if t >= since // 1000 * 1000)
            found = mt5.copy_ticks_from("EURUSD", since // 1000, count, mt5.COPY_TICKS_ALL)
            assert found is not None
            assert found["time_msc"].tolist() == times[first : first + count], (since, count)
            assert found["bid"].tolist() == bids[first : first + count]
    # In real time, the quote at every tick's moment is that tick, until the next one.
    clock = Clock(at(0))
    live = SimTerminal(seed=1, data=rates, symbol="EURUSD", clock=clock)
    assert live.initialize()
    for index, (time_msc, bid) in enumerate(zip(times, bids, strict=True)):
        for moment in (time_msc, time_msc + 999):
            clock.now = datetime.fromtimestamp(moment / 1000, UTC)
            tick = live.symbol_info_tick("EURUSD")
            assert tick is not None and (tick.time_msc, tick.bid) == (time_msc, bid), index
            assert tick.ask == everything["ask"][index]
