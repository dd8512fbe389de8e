"""The simulated account outlives the terminal: positions, balance, history and ticket counters are on
disk before order_send returns, so a new SimTerminal on the same file (even after a kill -9) carries on."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from mt5console.core.broker.sim import SimTerminal
from tests.helpers import WEDNESDAY, Clock, deal_history, open_positions, order_history

EVER = (datetime(2000, 1, 1, tzinfo=UTC), datetime(2100, 1, 1, tzinfo=UTC))
REPO = Path(__file__).resolve().parents[1]


def terminal(path: Path, clock: Clock, **options: Any) -> SimTerminal:
    mt5 = SimTerminal(seed=1, clock=clock, state_path=path, **options)
    assert mt5.initialize()
    return mt5


def deal(mt5: SimTerminal, symbol: str, side: int, volume: float, **extra: Any) -> Any:
    request: dict[str, Any] = {
        "action": mt5.TRADE_ACTION_DEAL,
        "symbol": symbol,
        "volume": volume,
        "type": side,
    }
    request.update(extra)
    result = mt5.order_send(request)
    assert result is not None
    return result


def everything(mt5: SimTerminal) -> tuple[Any, ...]:
    return (
        mt5.account_info(),
        open_positions(mt5),
        deal_history(mt5, *EVER),
        order_history(mt5, *EVER),
    )


def test_positions_balance_and_history_survive_a_new_terminal(tmp_path: Path) -> None:
    path, clock = tmp_path / "sim_state.db", Clock(WEDNESDAY)
    first = terminal(path, clock)
    tick = first.symbol_info_tick("EURUSD")
    assert tick is not None
    eur = deal(first, "EURUSD", 0, 0.3, sl=round(tick.bid - 0.01, 5), magic=11, comment="kept")
    jpy = deal(first, "USDJPY", 1, 0.1)
    clock.advance(minutes=10)
    assert deal(first, "EURUSD", 1, 0.1, position=eur.order).retcode == first.TRADE_RETCODE_DONE
    usdjpy = first.symbol_info_tick("USDJPY")
    assert usdjpy is not None
    moved = first.order_send({"action": 6, "position": jpy.order, "tp": round(usdjpy.ask - 1.0, 3)})
    assert moved is not None and moved.retcode == first.TRADE_RETCODE_DONE
    before = everything(first)
    account = before[0]
    assert account.balance != 10_000.0  # the partial close booked a profit or a loss

    second = terminal(path, clock, balance=99_999.0)  # a saved account keeps its own balance
    assert everything(second) == before
    (kept,) = open_positions(second, ticket=eur.order)
    assert (kept.volume, kept.magic, kept.comment) == (0.2, 11, "kept")
    again = deal(second, "GBPUSD", 0, 0.1)
    assert again.order > max(o.ticket for o in before[3]) and again.deal > max(d.ticket for d in before[2])


def test_stops_hit_while_no_terminal_ran_are_executed_when_one_starts(tmp_path: Path) -> None:
    path, clock = tmp_path / "state.db", Clock(WEDNESDAY)
    first = terminal(path, clock)
    tick = first.symbol_info_tick("EURUSD")
    assert tick is not None
    opened = deal(first, "EURUSD", 0, 0.5, sl=round(tick.bid - 0.0005, 5), tp=round(tick.bid + 0.0005, 5))
    del first

    clock.advance(days=1)
    second = terminal(path, clock)
    assert open_positions(second) == ()
    (out,) = (d for d in deal_history(second, position=opened.order) if d.entry == second.DEAL_ENTRY_OUT)
    assert out.reason in (second.DEAL_REASON_SL, second.DEAL_REASON_TP)
    assert WEDNESDAY.timestamp() < out.time < clock.now.timestamp()
    account = second.account_info()
    assert account is not None and account.balance == round(10_000 + out.profit, 2)
    third = terminal(path, clock)  # the execution itself was saved
    assert everything(third) == everything(second)


def test_a_refused_request_leaves_the_saved_state_as_it_was(tmp_path: Path) -> None:
    path, clock = tmp_path / "state.db", Clock(WEDNESDAY)
    first = terminal(path, clock)
    deal(first, "EURUSD", 0, 0.1)
    saved = everything(first)
    assert deal(first, "EURUSD", 0, 0.015).retcode == first.TRADE_RETCODE_INVALID_VOLUME
    assert deal(first, "EURUSD", 1, 0.1, position=123).retcode == first.TRADE_RETCODE_POSITION_CLOSED
    assert everything(terminal(path, clock)) == saved


def test_a_file_that_is_not_a_state_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "notes.db"
    path.write_bytes(b"this is not a database" * 100)
    with pytest.raises(ValueError, match="state file"):
        SimTerminal(seed=1, state_path=path)


CHILD = textwrap.dedent(
    """
    import sys, time
    from datetime import UTC, datetime
    from mt5console.core.broker.sim import SimTerminal

    now = datetime(2024, 3, 6, 10, 30, 15, tzinfo=UTC)
    mt5 = SimTerminal(seed=1, state_path=sys.argv[1], clock=lambda: now)
    assert mt5.initialize()
    tick = mt5.symbol_info_tick("XAUUSD")
    result = mt5.order_send({"action": 1, "symbol": "XAUUSD", "volume": 0.25, "type": 0,
                             "price": tick.ask, "deviation": 5, "sl": round(tick.bid - 30, 2), "magic": 77})
    print(result.retcode, result.order, result.price, flush=True)
    time.sleep(120)
    """
)


@pytest.mark.timeout(120)
def test_a_position_survives_a_kill_9_of_the_process_that_opened_it(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert child.stdout is not None
        line = child.stdout.readline()
        assert line, child.stderr.read() if child.stderr else "the child printed nothing"
        retcode, ticket, price = line.split()
        assert int(retcode) == 10009
    finally:
        os.kill(child.pid, signal.SIGKILL)
        child.wait()
    assert child.returncode == -signal.SIGKILL

    mt5 = terminal(path, Clock(WEDNESDAY))
    (position,) = open_positions(mt5, ticket=int(ticket))
    assert (position.symbol, position.volume, position.price_open, position.magic) == (
        "XAUUSD",
        0.25,
        float(price),
        77,
    )
    assert [d.entry for d in deal_history(mt5, position=int(ticket))] == [mt5.DEAL_ENTRY_IN]
