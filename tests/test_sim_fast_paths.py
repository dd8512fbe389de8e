"""The stepped replay's fast paths answer exactly as the general ones do: copy_rates_from_pos from
the rates rows (no search), quotes from the tick the clock stands on, trade requests checked field
by field as before, and the account's records reused only until the clock moves or the account
changes."""

from __future__ import annotations

import enum
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pytest

from mt5console.core.broker.rates import RATES_DTYPE
from mt5console.core.broker.sim import SimTerminal
from mt5console.core.broker.sim.bookkeeping import Hit
from mt5console.core.broker.sim.engine import SimEngine
from mt5console.core.broker.sim.replay import ReplayFeed
from mt5console.core.broker.sim.requests import BadCall, parse_request
from mt5console.core.broker.sim.state import Change, Ledger
from tests.helpers import Clock, stepped_eurusd_h1, walked_h1_bars

HOUR = 3600
FIRST_BAR = int(datetime(2024, 1, 1, tzinfo=UTC).timestamp())  # a Monday 00:00


def bars(count: int = 60, *, seed: int = 3) -> np.ndarray:
    """H1 bars with a weekend-sized gap after bar 20, tick volumes 1 to 9 and spreads 5 to 25."""
    return walked_h1_bars(
        count, seed=seed, first=FIRST_BAR, level=1.1, step=0.0008, wick=0.001, volumes=(1, 10),
        spreads=(5, 26), gap_after=20,
    )  # fmt: skip


def realtime(data: np.ndarray, clock: Clock) -> SimTerminal:
    mt5 = SimTerminal(seed=1, data=data, symbol="EURUSD", timeframe="H1", clock=clock)
    assert mt5.initialize()
    return mt5


def revealed(mt5: SimTerminal) -> np.ndarray:
    """Every H1 bar revealed now, built by the general path (copy_rates_range aggregates the feed)."""
    found = mt5.copy_rates_range(
        "EURUSD", mt5.TIMEFRAME_H1, datetime(2000, 1, 1, tzinfo=UTC), mt5.current_time
    )
    assert found is not None, mt5.last_error()
    return found


def assert_served_as_the_general_path(mt5: SimTerminal) -> None:
    every = revealed(mt5)
    for start_pos in (0, 1, 2, 5, len(every), len(every) + 3):
        for count in (1, 2, 3, 10, 1000):
            got = mt5.copy_rates_from_pos("EURUSD", mt5.TIMEFRAME_H1, start_pos, count)
            assert got is not None, mt5.last_error()
            stop = max(len(every) - start_pos, 0)
            wanted = every[max(stop - count, 0) : stop]
            assert got.dtype == RATES_DTYPE
            assert got.tobytes() == wanted.tobytes(), (mt5.current_time, start_pos, count)


# ------------------------------------------------------------------------------ copy_rates_from_pos


def test_a_stepped_replay_serves_each_moment_as_the_aggregating_path_does() -> None:
    data = bars()
    mt5 = stepped_eurusd_h1(data)
    assert_served_as_the_general_path(mt5)  # before the first bar: nothing revealed
    assert mt5.open_next_bar()
    assert_served_as_the_general_path(mt5)  # bar 0 forming: its open only
    mt5.finish_bar()
    assert_served_as_the_general_path(mt5)  # bar 0 complete
    for index in (1, 2, 20, 21, 22, 40, 59):  # across the gap, to the last bar
        mt5.advance_to(index)
        assert_served_as_the_general_path(mt5)
    mt5.advance_to(len(data))  # every bar complete, the clock on the last close
    assert_served_as_the_general_path(mt5)


def test_a_real_time_replay_serves_every_tick_of_a_bar_as_the_aggregating_path_does() -> None:
    data = bars()
    clock = Clock(datetime.fromtimestamp(FIRST_BAR - 60, UTC))
    mt5 = realtime(data, clock)
    assert_served_as_the_general_path(mt5)  # before the first tick
    # Ticks come at the open, a third and two thirds into the bar and a second before its end.
    for bar in (0, 5, 20, 21, 59):
        start = datetime.fromtimestamp(int(data["time"][bar]), UTC)
        for seconds in (0, 1, 1200, 1201, 2400, 3599, 3599.5):
            clock.now = start + timedelta(seconds=seconds)
            assert_served_as_the_general_path(mt5)
    clock.now = datetime.fromtimestamp(int(data["time"][20]) + 5 * HOUR, UTC)  # in the gap
    assert_served_as_the_general_path(mt5)


def test_the_replayed_timeframe_is_served_without_searching(monkeypatch: pytest.MonkeyPatch) -> None:
    mt5 = stepped_eurusd_h1(bars())
    mt5.open_next_bar()
    mt5.advance_to(30)

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("a stepped replay searched its bars or ticks")

    monkeypatch.setattr(ReplayFeed, "bars", refuse)
    monkeypatch.setattr(ReplayFeed, "last_tick", refuse)
    monkeypatch.setattr(ReplayFeed, "index_at", refuse)
    latest = mt5.copy_rates_from_pos("EURUSD", mt5.TIMEFRAME_H1, 0, 1)
    history = mt5.copy_rates_from_pos("EURUSD", mt5.TIMEFRAME_H1, 1, 300)
    tick = mt5.symbol_info_tick("EURUSD")
    assert latest is not None and history is not None and tick is not None
    assert len(latest) == 1 and len(history) == 30 and latest["open"][0] == tick.bid
    bought = mt5.order_send({"action": 1, "symbol": "EURUSD", "volume": 0.1, "type": 0})
    assert bought is not None and bought.retcode == mt5.TRADE_RETCODE_DONE and bought.price == tick.ask


def test_rates_are_new_arrays_of_their_own() -> None:
    mt5 = stepped_eurusd_h1(bars())
    mt5.open_next_bar()
    mt5.advance_to(12)
    latest, whole = mt5.copy_rates_from_pos("EURUSD", mt5.TIMEFRAME_H1, 0, 5), mt5.replay_rates
    assert latest is not None and len(latest) == 5 and len(whole) == 60
    for taken in (latest, whole):
        assert taken.flags.owndata and taken.dtype == RATES_DTYPE
    kept = latest.copy()
    latest["close"], whole["close"] = 0.0, 0.0  # callers writing into their arrays change no one else's
    again = mt5.copy_rates_from_pos("EURUSD", mt5.TIMEFRAME_H1, 0, 5)
    assert again is not None and again.tobytes() == kept.tobytes()
    assert np.all(mt5.replay_rates["close"] > 0)


# ------------------------------------------------------------------------------ quotes


def test_a_stepped_clock_quotes_what_a_real_time_clock_at_that_moment_quotes() -> None:
    data = bars()
    steps = stepped_eurusd_h1(data)
    clock = Clock(datetime.fromtimestamp(FIRST_BAR - 60, UTC))
    live = realtime(data, clock)
    assert steps.symbol_info_tick("EURUSD") is None and live.symbol_info_tick("EURUSD") is None

    def same_moment() -> None:
        clock.now = steps.current_time
        assert steps.symbol_info_tick("EURUSD") == live.symbol_info_tick("EURUSD")
        assert steps.symbol_info("EURUSD") == live.symbol_info("EURUSD")

    steps.open_next_bar()
    same_moment()
    steps.finish_bar()
    same_moment()
    for index in (3, 21, 40):
        steps.advance_to(index)
        same_moment()
    steps.advance_to(len(data))
    same_moment()


# ------------------------------------------------------------------------------ cached records


def test_records_are_reused_until_the_clock_moves_or_the_account_changes() -> None:
    mt5 = stepped_eurusd_h1(bars())
    mt5.open_next_bar()
    mt5.advance_to(3)
    empty, account = mt5.positions_get(), mt5.account_info()
    assert empty == () and account is not None
    assert mt5.positions_get() is empty and mt5.account_info() is account  # nothing moved
    bought = mt5.order_send({"action": 1, "symbol": "EURUSD", "volume": 0.1, "type": 0, "magic": 7})
    assert bought is not None and bought.retcode == mt5.TRADE_RETCODE_DONE
    held, after = mt5.positions_get(), mt5.account_info()  # the same moment, a changed account
    assert held is not None and after is not None and after is not account
    assert [p.ticket for p in held] == [bought.order] and held[0].magic == 7
    assert after.margin > 0 and after.equity == round(after.balance + held[0].profit, 2)
    assert mt5.positions_get(ticket=bought.order) == held and mt5.positions_get(symbol="EURUSD") == held
    assert mt5.positions_get(symbol="GBPUSD") == () and mt5.positions_get(group="*,!EUR*") == ()
    assert mt5.positions_get(ticket=bought.order + 1) == ()
    assert mt5.positions_get(group=5) is None and mt5.last_error()[0] == mt5.RES_E_INVALID_PARAMS  # type: ignore[arg-type]

    mt5.advance_to(4)  # the clock moves: the same position at the new prices
    moved, tick = mt5.positions_get(), mt5.symbol_info_tick("EURUSD")
    assert moved is not None and tick is not None and moved is not held
    assert moved[0].price_current == tick.bid and moved[0].time_msc == held[0].time_msc
    changed = mt5.order_send(
        {"action": mt5.TRADE_ACTION_SLTP, "position": bought.order, "sl": round(tick.bid - 0.5, 5)}
    )
    assert changed is not None and changed.retcode == mt5.TRADE_RETCODE_DONE, changed
    assert mt5.positions_get()[0].sl == round(tick.bid - 0.5, 5)  # type: ignore[index]


def test_a_stepped_clocks_calls_leave_the_catching_up_to_its_moves(monkeypatch: pytest.MonkeyPatch) -> None:
    """Nothing comes due while a stepped clock stands still: its module calls skip the catch-up
    (SL/TP reached since the last call), which each move runs instead; a real-time terminal's
    clock runs between calls, so every call of its catches up."""
    caught_up: list[int] = []
    catch_up = SimEngine.advance

    def counted(engine: SimEngine, extra: list[Hit] | None = None) -> None:
        caught_up.append(engine.now_ms())
        catch_up(engine, extra)

    monkeypatch.setattr(SimEngine, "advance", counted)
    data = bars()
    mt5 = stepped_eurusd_h1(data)
    assert mt5.open_next_bar() and len(caught_up) == 1  # the move caught up
    mt5.positions_get()
    mt5.copy_rates_from_pos("EURUSD", mt5.TIMEFRAME_H1, 0, 5)
    mt5.symbol_info_tick("EURUSD")
    bought = mt5.order_send({"action": 1, "symbol": "EURUSD", "volume": 0.1, "type": 0})
    assert bought is not None and bought.retcode == mt5.TRADE_RETCODE_DONE
    assert mt5.account_info() is not None and len(caught_up) == 1
    mt5.finish_bar()
    assert len(caught_up) == 2

    clock = Clock(datetime.fromtimestamp(FIRST_BAR + 60, UTC))
    live = realtime(data, clock)
    live.positions_get()
    live.symbol_info_tick("EURUSD")
    assert len(caught_up) == 4


def test_a_stepped_replay_executes_other_symbols_stops_as_its_clock_moves() -> None:
    """A position on a walked symbol in a stepped replay: its stop or target is executed by the
    step that passes it, and the calls after the step see it closed."""
    mt5 = stepped_eurusd_h1(bars())
    mt5.open_next_bar()
    mt5.advance_to(5)
    tick = mt5.symbol_info_tick("GBPUSD")
    assert tick is not None
    levels = {"sl": round(tick.bid - 0.0003, 5), "tp": round(tick.bid + 0.0003, 5)}
    sent = mt5.order_send({"action": 1, "symbol": "GBPUSD", "volume": 0.1, "type": 0, **levels})
    assert sent is not None and sent.retcode == mt5.TRADE_RETCODE_DONE, sent
    closed = mt5.advance_to(15)
    assert [deal.position_id for deal in closed] == [sent.order]
    assert closed[0].reason in (mt5.DEAL_REASON_SL, mt5.DEAL_REASON_TP)
    assert closed[0].time_msc <= mt5.current_time.timestamp() * 1000
    assert mt5.positions_get() == () and mt5.positions_total() == 0
    assert mt5.history_deals_get(position=sent.order)[-1] == closed[0]  # type: ignore[index]


def test_every_change_of_the_ledger_moves_its_revision() -> None:
    ledger = Ledger(login=1, balance=100.0, created_msc=0, processed_msc=0)
    assert ledger.revision == 0
    ledger.apply(Change(balance=90.0))
    ledger.apply(Change())
    assert ledger.revision == 2 and ledger.balance == 90.0


# ------------------------------------------------------------------------------ trade requests


class Side(enum.IntEnum):
    BUY = 0


class Text(str):
    pass


@pytest.mark.parametrize(
    ("fields", "kept"),
    [
        ({"type": -1}, {"type": -1}),  # signed fields may be negative
        ({"type": Side.BUY, "magic": Side.BUY}, {"type": Side.BUY}),  # int subclasses are ints
        ({"volume": np.float64(0.25)}, {"volume": 0.25}),  # so are float subclasses
        ({"comment": Text("x")}, {"comment": "x"}),
        ({"symbol": "EURUSD", "volume": 0.1, "sl": 1.0, "deviation": 0}, {"sl": 1.0, "deviation": 0}),
    ],
)
def test_unusual_but_valid_request_values_are_accepted(fields: dict[str, Any], kept: dict[str, Any]) -> None:
    request = parse_request(fields)
    assert {name: getattr(request, name) for name in kept} == kept
    assert request.price == 0.0 and request.comment == fields.get("comment", "")


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"volume": 1}, 'Invalid "volume" argument: expected a float, got int 1'),
        ({"action": True}, 'Invalid "action" argument: expected an int, got bool'),
        ({"magic": -1}, 'Invalid "magic" argument: -1 is negative'),
        ({"sl": float("nan")}, 'Invalid "sl" argument: nan is not a finite number'),
        ({"tp": float("inf")}, 'Invalid "tp" argument: inf is not a finite number'),
        ({"symbol": 5}, 'Invalid "symbol" argument: expected a str, got int'),
        ({"comment": 1.5}, 'Invalid "comment" argument: expected a str, got float'),
        ({"expiration": 1.0}, 'Invalid "expiration" argument: expected an int, got float'),
        ({"nope": 1}, 'Invalid "nope" argument: a trade request has no such field'),
    ],
)
def test_malformed_request_values_are_refused_naming_the_field(fields: dict[str, Any], message: str) -> None:
    with pytest.raises(BadCall) as refused:
        parse_request(fields)
    assert str(refused.value) == message
