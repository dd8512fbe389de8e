"""Platform jobs end to end: the executor, the handlers, a simulated terminal and a Store on disk."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import threading
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from mt5console.core.agent.ea_control import EAControl
from mt5console.core.agent.jobs import JOB_TYPES, JobExecutor, JobHandlers, result_path
from mt5console.core.agent.jobs.trade_recovery import order_comment
from mt5console.core.agent.metaeditor import Compiler
from mt5console.core.agent.terminal_files import TerminalFolders
from mt5console.core.broker.models import Side
from mt5console.core.broker.mt5 import Broker
from mt5console.core.broker.sim import SimTerminal
from mt5console.core.events import EventBus, LogLine
from mt5console.core.limits import LimitGuard
from mt5console.core.settings import Limits
from mt5console.core.store import JobState, OutboxRecord, Store
from tests.helpers import Clock

from .test_ea_control import StandInController
from .test_metaeditor import BROKEN_SOURCE, GOOD_SOURCE, write_standin_metaeditor

AGENT = "agent-7"
REPO = Path(__file__).resolve().parents[2]
FAR_FUTURE = datetime(2100, 1, 1, tzinfo=UTC)


@dataclass
class JobsRig:
    sim: SimTerminal
    broker: Broker
    store: Store
    handlers: JobHandlers
    executor: JobExecutor
    folders: TerminalFolders
    events: EventBus = field(default_factory=EventBus)  # the bus the handlers publish on
    said: list[str] = field(default_factory=list)  # the log lines, as the console shows them

    def outbox(self) -> list[OutboxRecord]:
        return self.store.outbox_due(FAR_FUTURE, limit=1000)

    def deals_with(self, comment: str) -> list[Any]:
        deals = self.sim.history_deals_get(datetime(2000, 1, 1, tzinfo=UTC), FAR_FUTURE)
        assert deals is not None, self.sim.last_error()
        return [d for d in deals if d.comment == comment]


async def make_rig(
    tmp_path: Path,
    *,
    limits: Limits | None = None,
    clock: Clock | None = None,
    sim: SimTerminal | None = None,
    simulated: bool = True,
) -> JobsRig:
    """``simulated=False``: the simulator plays a real terminal (--broker mt5), as for the EA jobs,
    which --broker sim refuses (it has no charts)."""
    terminal = sim or SimTerminal(seed=11, clock=clock or Clock(), state_path=tmp_path / "sim" / "state.db")
    events = EventBus()
    broker = Broker(lambda: terminal, events=events, simulated=simulated)
    await broker.connect()
    store = Store(tmp_path / "mt5console.db")
    handlers = JobHandlers(
        broker,
        LimitGuard(broker, limits or Limits()),
        compiler=Compiler(metaeditor_path=str(write_standin_metaeditor(tmp_path)), timeout=30),
        ea_control=EAControl(answer_timeout=5, poll_interval=0.02),
        events=events,
        strategy_of_magic=store.strategy_id_of_magic,
    )
    assert broker.terminal is not None
    folders = TerminalFolders.of(broker.terminal)
    rig = JobsRig(
        terminal,
        broker,
        store,
        handlers,
        JobExecutor(store, handlers, AGENT, events=events),
        folders,
        events=events,
    )
    events.subscribe(lambda e: rig.said.append(e.message) if isinstance(e, LogLine) else None)
    return rig


@pytest.fixture
async def rig(tmp_path: Path) -> AsyncIterator[JobsRig]:
    made = await make_rig(tmp_path)
    yield made
    await made.broker.close()
    made.store.close()


@pytest.fixture
async def terminal_rig(tmp_path: Path) -> AsyncIterator[JobsRig]:
    """A rig whose terminal is taken for a real one: the EA jobs run there."""
    made = await make_rig(tmp_path, simulated=False)
    yield made
    await made.broker.close()
    made.store.close()


@pytest.fixture
def controller(terminal_rig: JobsRig) -> Iterator[StandInController]:
    stand_in = StandInController(terminal_rig.folders)
    thread = threading.Thread(target=stand_in.run, daemon=True)
    thread.start()
    yield stand_in
    stand_in.stopping.set()
    thread.join(timeout=5)


BUY = {"symbol": "EURUSD", "side": "buy", "volume": 0.1, "magic": 4242}


# ----------------------------------------------------------------------------------------- trading


async def test_trade_job_opens_a_position_and_reports_it(rig: JobsRig) -> None:
    outcome = await rig.executor.execute("job-trade-0001", "trade", {**BUY, "comment": "web"})
    assert outcome.status == "completed" and outcome.error_message is None
    comment = order_comment("job-trade-0001", "web")
    assert comment.startswith("web job:j~") and len(comment) == len("web job:") + 12
    [deal] = rig.deals_with(comment)
    assert outcome.output_data == {
        "fill_price": deal.price,
        "order_id": deal.order,
        "ticket": deal.position_id,
    }
    [position] = await rig.broker.positions(ticket=deal.position_id)
    assert position.side is Side.BUY and position.volume == pytest.approx(0.1) and position.magic == 4242
    record = rig.store.get_job("job-trade-0001")
    assert record is not None and record.state is JobState.COMPLETED and record.result == outcome.output_data
    [queued] = rig.outbox()
    assert (queued.kind, queued.method, queued.path) == (
        "job_result",
        "POST",
        f"/agents/{AGENT}/jobs/job-trade-0001/result",
    )
    assert queued.body == {"status": "completed", "output_data": outcome.output_data, "error_message": None}
    assert rig.said[-1] == (
        f"job job-trade-0001 completed (fill_price {deal.price}, order_id {deal.order}, "
        f"ticket {deal.position_id})"
    )


def test_ids_alike_in_their_first_characters_never_share_an_order_comment() -> None:
    # Ids cut to fit MT5's 31 characters used to collide: a resumed job took another job's deal.
    ids = [f"platform-job-2026-11-22-{n:04d}" for n in range(400)]
    for comment in (None, "web order"):
        comments = {order_comment(job_id, comment) for job_id in ids}
        assert len(comments) == len(ids)
        assert all(len(text) <= 31 for text in comments)
    assert order_comment("k007") == "job:k007"  # a short id is kept whole, readable
    assert order_comment("platform-job-2026-11-22-0001") == order_comment("platform-job-2026-11-22-0001")


async def test_a_resumed_job_never_takes_the_deal_of_a_job_alike_in_its_first_characters(
    rig: JobsRig,
) -> None:
    first = await rig.executor.execute("platform-job-2026-11-22-0000", "trade", BUY)
    assert first.status == "completed"
    rig.store.job_received("platform-job-2026-11-22-0155", "trade", BUY)
    rig.store.job_started("platform-job-2026-11-22-0155")  # cut off before its order was sent
    resumed = await rig.executor.execute("platform-job-2026-11-22-0155", "trade", BUY)
    assert resumed.status == "completed"
    assert resumed.output_data["ticket"] != first.output_data["ticket"]  # its own order, sent now
    assert len(await rig.broker.positions()) == 2


async def test_a_trade_job_may_not_borrow_a_strategys_magic_number(rig: JobsRig) -> None:
    record = rig.store.save_strategy(
        "scalper", name="Scalper", symbol="EURUSD", timeframe="M1", definition={"strategyId": "scalper"}
    )
    outcome = await rig.executor.execute("job-borrow", "trade", {**BUY, "magic": record.magic})
    assert outcome.status == "failed"
    assert outcome.error_message is not None
    assert f"magic {record.magic} is the console strategy 'scalper''s" in outcome.error_message
    assert await rig.broker.positions() == ()


async def test_trade_with_stops_and_a_sell(rig: JobsRig) -> None:
    tick = await rig.broker.tick("EURUSD")
    sl, tp = round(tick.ask + 0.0050, 5), round(tick.bid - 0.0100, 5)
    outcome = await rig.executor.execute("job-sell", "trade", {**BUY, "side": "SELL", "sl": sl, "tp": tp})
    assert outcome.status == "completed", outcome.error_message
    [position] = await rig.broker.positions(ticket=outcome.output_data["ticket"])
    assert position.side is Side.SELL and (position.sl, position.tp) == (sl, tp)


async def test_the_same_job_handed_out_twice_trades_once(rig: JobsRig) -> None:
    first = await rig.executor.execute("job-twice", "trade", BUY)
    second = await rig.executor.execute("job-twice", "trade", BUY)
    assert second.repeated and second.body() == first.body()
    assert len(rig.deals_with(order_comment("job-twice"))) == 1
    assert len(await rig.broker.positions()) == 1
    assert [r.body for r in rig.outbox()] == [first.body(), first.body()]  # the result is sent again


async def test_the_same_job_at_the_same_time_trades_once(rig: JobsRig) -> None:
    outcomes = await asyncio.gather(*(rig.executor.execute("job-race", "trade", BUY) for _ in range(3)))
    assert len({str(o.body()) for o in outcomes}) == 1
    assert len(rig.deals_with(order_comment("job-race"))) == 1
    assert len(rig.outbox()) == 1


async def test_a_trade_cut_off_after_order_send_is_found_not_resent(rig: JobsRig) -> None:
    # What a crash between order_send and the stored result leaves: the job running, the deal made.
    rig.store.job_received("job-cut", "trade", BUY, when=datetime.now(UTC) - timedelta(minutes=3))
    rig.store.job_started("job-cut")
    sent = await rig.broker.open_market("EURUSD", Side.BUY, 0.1, magic=4242, comment=order_comment("job-cut"))
    outcome = await rig.executor.execute("job-cut", "trade", BUY)
    assert outcome.status == "completed" and outcome.output_data["ticket"] == sent.position
    assert outcome.output_data["fill_price"] == pytest.approx(sent.price)
    assert len(rig.deals_with(order_comment("job-cut"))) == 1 and len(await rig.broker.positions()) == 1


async def test_a_cut_off_trade_whose_deal_history_is_not_loaded_yet_is_found_by_its_position(
    rig: JobsRig, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A terminal just restarted: its open positions are there, its deal history is still loading.
    rig.store.job_received("job-lag", "trade", BUY, when=datetime.now(UTC) - timedelta(minutes=3))
    rig.store.job_started("job-lag")
    sent = await rig.broker.open_market("EURUSD", Side.BUY, 0.1, magic=4242, comment=order_comment("job-lag"))

    async def history_not_loaded(*_: Any, **__: Any) -> tuple[()]:
        return ()

    monkeypatch.setattr(rig.broker, "deals", history_not_loaded)
    outcome = await rig.executor.execute("job-lag", "trade", BUY)
    assert outcome.status == "completed"
    assert outcome.output_data == {
        "fill_price": sent.price,
        "order_id": sent.position,
        "ticket": sent.position,
    }
    assert len(rig.deals_with(order_comment("job-lag"))) == 1 and len(await rig.broker.positions()) == 1


async def test_a_trade_cut_off_before_order_send_is_sent_once(rig: JobsRig) -> None:
    rig.store.job_received("job-early", "trade", BUY)
    rig.store.job_started("job-early")
    outcome = await rig.executor.execute("job-early", "trade", BUY)
    assert outcome.status == "completed"
    assert len(rig.deals_with(order_comment("job-early"))) == 1


async def test_trade_kill_9_between_send_and_report_makes_one_deal(tmp_path: Path) -> None:
    """A real crash: a child process runs the unmodified executor and is SIGKILLed after order_send
    returned, before the result was stored; a fresh console handed the same job finds the deal."""
    state, database, job_id = (
        tmp_path / "sim" / "state.db",
        tmp_path / "mt5console.db",
        "job-kill-9-0123456789abcdef",
    )
    child = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        KILLED_CHILD,
        str(state),
        str(database),
        job_id,
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        stdout=asyncio.subprocess.PIPE,
    )
    assert child.stdout is not None
    line = await asyncio.wait_for(child.stdout.readline(), timeout=60)
    assert line.startswith(b"SENT "), line
    sent_ticket = int(line.split()[1])
    os.kill(child.pid, signal.SIGKILL)
    assert await child.wait() == -signal.SIGKILL

    with Store(database) as store:  # what the dead console left: running, nothing to report
        record = store.get_job(job_id)
        assert record is not None and record.state is JobState.RUNNING
        assert store.outbox_pending_count() == 0

    rig = await make_rig(tmp_path, sim=SimTerminal(seed=5, state_path=state))
    try:
        outcome = await rig.executor.execute(job_id, "trade", BUY)
        assert outcome.status == "completed", outcome.error_message
        assert outcome.output_data["ticket"] == sent_ticket
        again = await rig.executor.execute(job_id, "trade", BUY)
        assert again.repeated and again.output_data == outcome.output_data
        assert len(rig.deals_with(order_comment(job_id))) == 1  # exactly one deal
        assert [p.ticket for p in await rig.broker.positions()] == [sent_ticket]
        assert [r.body["status"] for r in rig.outbox()] == ["completed", "completed"]
    finally:
        await rig.broker.close()
        rig.store.close()


KILLED_CHILD = """
import asyncio, sys, time
from pathlib import Path
from mt5console.core.agent.jobs import JobExecutor, JobHandlers
from mt5console.core.broker.mt5 import Broker
from mt5console.core.broker.sim import SimTerminal
from mt5console.core.events import EventBus
from mt5console.core.limits import LimitGuard
from mt5console.core.settings import Limits
from mt5console.core.store import Store

class DiesAfterSend(Broker):
    async def open_market(self, *args, **kwargs):
        result = await super().open_market(*args, **kwargs)
        print("SENT", result.position, flush=True)
        time.sleep(600)  # the loop is stuck here when SIGKILL comes: the result is never stored
        return result

async def main():
    sim = SimTerminal(seed=5, state_path=Path(sys.argv[1]))
    broker = DiesAfterSend(lambda: sim, events=EventBus(), simulated=True)
    await broker.connect()
    handlers = JobHandlers(broker, LimitGuard(broker, Limits()))
    executor = JobExecutor(Store(Path(sys.argv[2])), handlers, "agent-7")
    job = {"symbol": "EURUSD", "side": "buy", "volume": 0.1, "magic": 4242}
    await executor.execute(sys.argv[3], "trade", job)

asyncio.run(main())
"""


async def test_limits_refuse_a_trade_job(tmp_path: Path) -> None:
    rig = await make_rig(tmp_path, limits=Limits(max_lot=0.5, max_positions=1))
    try:
        big = await rig.executor.execute("job-big", "trade", {**BUY, "volume": 1.0})
        assert big.status == "failed" and big.error_message is not None
        assert "refused by the console's limits" in big.error_message and "--max-lot 0.5" in big.error_message
        assert await rig.broker.positions() == ()
        assert (await rig.executor.execute("job-ok", "trade", BUY)).status == "completed"
        second = await rig.executor.execute("job-second", "trade", BUY)
        assert second.status == "failed" and "--max-positions limit 1" in (second.error_message or "")
        assert len(await rig.broker.positions()) == 1
        record = rig.store.get_job("job-big")
        assert record is not None and record.state is JobState.FAILED and record.error == big.error_message
        assert rig.outbox()[0].body == {
            "status": "failed",
            "output_data": {},
            "error_message": big.error_message,
        }
    finally:
        await rig.broker.close()
        rig.store.close()


@pytest.mark.parametrize(
    ("job_type", "input_data", "reason"),
    [
        ("teleport", {}, "unknown job type 'teleport'; this console runs trade, close_position"),
        ("trade", {"side": "buy", "volume": 0.1}, "trade: symbol is required"),
        ("trade", {**BUY, "side": "long"}, "trade: side must be buy or sell, not 'long'"),
        ("trade", {**BUY, "volume": -1}, "trade: volume must be more than 0"),
        ("trade", {**BUY, "volume": "0.1"}, "trade: volume must be a number, not '0.1'"),
        ("trade", {**BUY, "stoploss": 1.0}, "trade: unknown field(s) stoploss; accepted: symbol, side"),
        ("trade", {**BUY, "volume": 0.123}, "0.123 lots is not a multiple of EURUSD's volume step 0.01"),
        ("trade", {**BUY, "volume": 0.001}, "below EURUSD's minimum 0.01"),
        ("trade", {**BUY, "symbol": "NOPE"}, "the terminal has no symbol 'NOPE'"),
        ("trade", ["not", "an", "object"], "trade: input_data must be a JSON object, not list"),
        ("trade", {**BUY, "symbol": float("nan")}, "trade: symbol must be a non-empty string, not nan"),
        ("close_position", {"ticket": 99}, "position 99 is not open"),
        ("close_position", {"ticket": "12"}, "close_position: ticket must be a whole number"),
        ("get_candles", {"symbol": "EURUSD", "timeframe": "H2", "count": 5}, "timeframe must be one of M1"),
        ("get_candles", {"symbol": "EURUSD", "timeframe": "H1", "count": 0}, "count must be from 1 to 10000"),
        ("compile", {"ea_name": "../x", "source": "int x;"}, "must not contain path separators"),
        ("compile", {"ea_name": "X", "storage_path": "eas/x.mq5"}, "storage_path needs version_id"),
        ("run", {"ea_name": "X", "symbol": "EURUSD", "timeframe": "H1", "inputs": {"a b": 1}}, "not an MQL5"),
    ],
)
async def test_bad_jobs_fail_with_the_reason_and_the_loop_goes_on(
    rig: JobsRig, job_type: str, input_data: Any, reason: str
) -> None:
    outcome = await rig.executor.execute("job-bad", job_type, input_data)
    assert outcome.status == "failed" and reason in (outcome.error_message or ""), outcome.error_message
    assert await rig.broker.positions() == ()
    record = rig.store.get_job("job-bad")
    assert record is not None and record.state is JobState.FAILED
    assert (await rig.executor.execute("job-next", "get_account", {})).status == "completed"


async def test_an_unexpected_error_fails_the_job_not_the_loop(
    rig: JobsRig, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def broken() -> dict[str, Any]:
        raise RuntimeError("boom")

    monkeypatch.setattr(rig.handlers, "account", broken)
    outcome = await rig.executor.execute("job-boom", "get_account", None)
    assert outcome.status == "failed" and outcome.error_message == "internal error: RuntimeError: boom"
    assert (await rig.executor.execute("job-after", "get_positions", {})).status == "completed"


async def test_a_job_without_an_id_is_not_run(rig: JobsRig) -> None:
    outcome = await rig.executor.execute("", "trade", BUY)
    assert outcome.status == "failed" and "non-empty string id" in (outcome.error_message or "")
    assert await rig.broker.positions() == () and rig.outbox() == []


async def test_close_position_whole_and_partial(rig: JobsRig) -> None:
    opened = await rig.executor.execute("job-open", "trade", {**BUY, "volume": 0.3})
    ticket = opened.output_data["ticket"]
    part = await rig.executor.execute("job-part", "close_position", {"ticket": ticket, "volume": 0.1})
    assert part.status == "completed", part.error_message
    [deal] = rig.deals_with(order_comment("job-part"))
    assert part.output_data == {
        "closed_price": deal.price,
        "pnl": round(deal.profit + deal.commission + deal.swap, 2),
    }
    [position] = await rig.broker.positions(ticket=ticket)
    assert position.volume == pytest.approx(0.2)
    too_much = await rig.executor.execute("job-much", "close_position", {"ticket": ticket, "volume": 0.5})
    assert too_much.status == "failed" and "it holds 0.2" in (too_much.error_message or "")
    rest = await rig.executor.execute("job-rest", "close_position", {"ticket": ticket})
    assert rest.status == "completed" and await rig.broker.positions() == ()
    [last] = rig.deals_with(order_comment("job-rest"))
    assert last.volume == pytest.approx(0.2) and rest.output_data["closed_price"] == last.price


async def test_a_close_cut_off_after_it_reached_the_terminal_is_found(rig: JobsRig) -> None:
    ticket = (await rig.executor.execute("job-open2", "trade", BUY)).output_data["ticket"]
    rig.store.job_received("job-close-cut", "close_position", {"ticket": ticket})
    rig.store.job_started("job-close-cut")
    await rig.broker.close_position(ticket, comment=order_comment("job-close-cut"))
    outcome = await rig.executor.execute("job-close-cut", "close_position", {"ticket": ticket})
    assert outcome.status == "completed", outcome.error_message
    [deal] = rig.deals_with(order_comment("job-close-cut"))
    assert outcome.output_data["closed_price"] == deal.price


# ----------------------------------------------------------------------------------------- reading


async def test_get_positions_account_and_candles(rig: JobsRig) -> None:
    await rig.executor.execute("job-eur", "trade", BUY)
    await rig.executor.execute("job-gbp", "trade", {**BUY, "symbol": "GBPUSD", "side": "sell"})
    every = await rig.executor.execute("job-pos", "get_positions", {})
    assert {p["symbol"] for p in every.output_data["positions"]} == {"EURUSD", "GBPUSD"}
    only = await rig.executor.execute("job-pos-gbp", "get_positions", {"symbol": "GBPUSD"})
    [gbp] = only.output_data["positions"]
    [live] = await rig.broker.positions(symbol="GBPUSD")
    assert gbp == {
        "ticket": live.ticket,
        "symbol": "GBPUSD",
        "type": "sell",
        "volume": live.volume,
        "open_price": live.price_open,
        "current_price": live.price_current,
        "sl": 0.0,
        "tp": 0.0,
        "profit": live.profit,
    }

    account = await rig.executor.execute("job-acc", "get_account", {})
    live_account = await rig.broker.account()
    assert account.output_data == {
        "balance": live_account.balance,
        "equity": live_account.equity,
        "margin_used": live_account.margin,
        "margin_available": live_account.margin_free,
        "currency": "USD",
        "leverage": 100,
    }

    candles = await rig.executor.execute(
        "job-c", "get_candles", {"symbol": "EURUSD", "timeframe": "m15", "count": 50}
    )
    bars = candles.output_data["candles"]
    rates = await rig.broker.rates("EURUSD", "M15", 50)
    assert len(bars) == 50
    assert [datetime.fromisoformat(b["time"]) for b in bars] == [
        datetime.fromtimestamp(int(t), UTC) for t in rates["time"]
    ]
    assert bars[-1]["close"] == pytest.approx(float(rates["close"][-1]))
    assert all(
        b["low"] <= min(b["open"], b["close"]) <= max(b["open"], b["close"]) <= b["high"] for b in bars
    )
    assert set(bars[0]) == {"time", "open", "high", "low", "close", "volume"}


# ----------------------------------------------------------------------------------------- EAs


async def test_compile_deploy_run_stop_end_to_end(
    terminal_rig: JobsRig, controller: StandInController
) -> None:
    rig = terminal_rig
    compiled = await rig.executor.execute(
        "job-compile", "compile", {"ea_name": "Grid", "source": GOOD_SOURCE}
    )
    assert compiled.status == "completed", compiled.error_message
    ex5 = rig.folders.data / "MQL5" / "Experts" / "MT5Console" / "Grid.ex5"
    assert compiled.output_data == {"compiled": True, "errors": [], "warnings": [], "ex5_path": str(ex5)}

    deployed = await rig.executor.execute("job-deploy", "deploy", {"ea_name": "Grid", "ex5_path": str(ex5)})
    assert deployed.output_data == {"deployed": True, "path": str(ex5)}

    run_input = {"ea_name": "Grid", "symbol": "EURUSD", "timeframe": "H1", "inputs": {"Lots": 0.2}}
    running = await rig.executor.execute("job-run", "run", run_input)
    assert running.status == "completed", running.error_message
    assert running.output_data == {"running": True}
    stopped = await rig.executor.execute("job-stop", "stop", {"ea_name": "Grid", "symbol": "EURUSD"})
    assert stopped.output_data == {"stopped": True}
    assert [(c["action"], c["ea"]) for c in controller.commands] == [("run", "Grid"), ("stop", "Grid")]
    assert [r.body["status"] for r in rig.outbox()] == ["completed"] * 4


async def test_compile_with_errors_reports_them(rig: JobsRig) -> None:
    outcome = await rig.executor.execute(
        "job-broken", "compile", {"ea_name": "Broken", "source": BROKEN_SOURCE}
    )
    assert outcome.status == "completed"
    assert outcome.output_data["compiled"] is False and outcome.output_data["ex5_path"] is None
    assert [(e["line"], e["code"]) for e in outcome.output_data["errors"]] == [
        (14, 256),
        (21, 149),
        (27, 145),
    ]


async def test_run_without_a_controller_fails_with_the_setup_hint(terminal_rig: JobsRig) -> None:
    rig = terminal_rig
    rig.handlers.ea_control.answer_timeout = 0.3
    await rig.executor.execute("job-c2", "compile", {"ea_name": "Grid", "source": GOOD_SOURCE})
    outcome = await rig.executor.execute(
        "job-run2", "run", {"ea_name": "Grid", "symbol": "EURUSD", "timeframe": "H1"}
    )
    assert outcome.status == "failed"
    assert "no MT5ConsoleController answered within 0.3 s" in (outcome.error_message or "")


def test_every_job_type_of_the_interface_is_known() -> None:
    assert set(JOB_TYPES) == {
        "trade",
        "close_position",
        "get_positions",
        "get_account",
        "get_candles",
        "compile",
        "deploy",
        "run",
        "stop",
    }


def test_result_paths_quote_the_job_id() -> None:
    assert result_path("a1", "4f0c-9") == "/agents/a1/jobs/4f0c-9/result"
    assert result_path("a1", "../../x y") == "/agents/a1/jobs/..%2F..%2Fx%20y/result"
