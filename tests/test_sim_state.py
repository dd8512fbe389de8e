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

    first.shutdown()  # one terminal per state file: the next one starts once this one is off
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
    first.shutdown()

    clock.advance(days=1)
    second = terminal(path, clock)
    assert open_positions(second) == ()
    (out,) = (d for d in deal_history(second, position=opened.order) if d.entry == second.DEAL_ENTRY_OUT)
    assert out.reason in (second.DEAL_REASON_SL, second.DEAL_REASON_TP)
    assert WEDNESDAY.timestamp() < out.time < clock.now.timestamp()
    account = second.account_info()
    assert account is not None and account.balance == round(10_000 + out.profit, 2)
    seen = everything(second)
    second.shutdown()
    third = terminal(path, clock)  # the execution itself was saved
    assert everything(third) == seen


def test_a_refused_request_leaves_the_saved_state_as_it_was(tmp_path: Path) -> None:
    path, clock = tmp_path / "state.db", Clock(WEDNESDAY)
    first = terminal(path, clock)
    deal(first, "EURUSD", 0, 0.1)
    saved = everything(first)
    assert deal(first, "EURUSD", 0, 0.015).retcode == first.TRADE_RETCODE_INVALID_VOLUME
    assert deal(first, "EURUSD", 1, 0.1, position=123).retcode == first.TRADE_RETCODE_POSITION_CLOSED
    first.shutdown()
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


# ------------------------------------------------------------------- one terminal per state file


def test_a_second_terminal_on_a_held_state_file_cannot_initialize_until_the_first_shuts_down(
    tmp_path: Path,
) -> None:
    path, clock = tmp_path / "shared.db", Clock(WEDNESDAY)
    first = terminal(path, clock)
    bought = deal(first, "EURUSD", 0, 0.5)
    second = SimTerminal(seed=1, clock=clock, state_path=path)  # made while the position is open
    assert second.initialize() is False
    code, text = second.last_error()
    assert code == second.RES_E_INTERNAL_FAIL_INIT
    assert str(path) in text and f"pid {os.getpid()}" in text
    assert second.positions_get() is None  # not connected: it cannot trade the account

    clock.advance(minutes=5)
    closed = deal(first, "EURUSD", 1, 0.5, position=bought.order)
    assert closed.retcode == first.TRADE_RETCODE_DONE
    after_close = everything(first)
    first.shutdown()

    # Now the file is free: the second terminal reads the account as it is NOW (the position it saw
    # open at its making is closed), so it can neither close it again nor bring it back.
    assert second.initialize(), second.last_error()
    assert everything(second) == after_close
    again = deal(second, "EURUSD", 1, 0.5, position=bought.order)
    assert again.retcode == second.TRADE_RETCODE_POSITION_CLOSED
    assert first.initialize() is False  # and now the first one is the one kept out
    second.shutdown()
    assert everything(terminal(path, clock)) == after_close


def test_a_new_state_file_is_written_by_the_terminal_that_takes_it(tmp_path: Path) -> None:
    path, clock = tmp_path / "new.db", Clock(WEDNESDAY)
    made_first = SimTerminal(seed=1, clock=clock, state_path=path, balance=5_000.0)
    made_second = SimTerminal(seed=1, clock=clock, state_path=path, balance=7_000.0)
    assert made_second.initialize()
    assert made_first.initialize() is False
    made_second.shutdown()
    assert made_first.initialize()
    account = made_first.account_info()
    assert account is not None and account.balance == 7_000.0  # the account the file holds
    assert len(deal_history(made_first, *EVER)) == 1  # one deposit, not two


# ------------------------------------------------------------------------ magic numbers (ulong)


@pytest.mark.parametrize("magic", [2**63 - 1, 2**63, 2**64 - 1])
def test_a_magic_number_up_to_a_ulong_survives_the_state_file(tmp_path: Path, magic: int) -> None:
    path, clock = tmp_path / "state.db", Clock(WEDNESDAY)
    first = terminal(path, clock)
    opened = deal(first, "EURUSD", 0, 0.2, magic=magic)
    assert opened.retcode == first.TRADE_RETCODE_DONE, opened.comment
    assert deal(first, "EURUSD", 1, 0.1, position=opened.order, magic=magic).retcode == 10009
    before = everything(first)
    first.shutdown()
    second = terminal(path, clock)
    assert everything(second) == before
    (position,) = open_positions(second)
    assert position.magic == magic
    assert {d.magic for d in deal_history(second, position=opened.order)} == {magic}
    assert {o.magic for o in order_history(second, position=opened.order)} == {magic}


@pytest.mark.parametrize("magic", [2**64, 2**70, -1])
def test_a_magic_number_beyond_a_ulong_is_an_invalid_argument_and_saves_nothing(
    tmp_path: Path, magic: int
) -> None:
    path, clock = tmp_path / "state.db", Clock(WEDNESDAY)
    mt5 = terminal(path, clock)
    before = everything(mt5)
    request = {"action": 1, "symbol": "EURUSD", "volume": 0.1, "type": 0, "magic": magic}
    assert mt5.order_send(request) is None
    code, text = mt5.last_error()
    assert code == mt5.RES_E_INVALID_PARAMS and '"magic"' in text
    mt5.shutdown()
    assert everything(terminal(path, clock)) == before


# ---------------------------------------------------------------- the feed the state was priced by


def test_a_state_file_opened_with_another_seed_says_so(tmp_path: Path) -> None:
    path, clock = tmp_path / "state.db", Clock(WEDNESDAY)
    first = terminal(path, clock)
    deal(first, "EURUSD", 0, 0.1)
    assert first.setup_notices == ()  # a new file: nothing to compare with
    first.shutdown()

    same = SimTerminal(seed=1, clock=clock, state_path=path)
    assert same.setup_notices == ()
    other = SimTerminal(seed=2, clock=clock, state_path=path)
    (notice,) = other.setup_notices
    assert "seed 1" in notice and "seed 2" in notice and str(path) in notice
    assert "1 open position(s)" in notice
    assert other.initialize()  # said, not refused: a trader may change the feed on purpose
    other.shutdown()
    # The file now remembers the feed used last.
    assert SimTerminal(seed=2, clock=clock, state_path=path).setup_notices == ()
    (back,) = SimTerminal(seed=1, clock=clock, state_path=path).setup_notices
    assert "last used with seed 2" in back
