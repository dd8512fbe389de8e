"""What a newcomer sees after ``make run``: the example strategies at work on the simulator at once.

The runtime is started as ``make run`` starts it (the simulator, the examples folder), on a clock the
test moves a minute at a time: every strategy evaluates each closed bar of its timeframe (the
strategies pane counts them), a quiet bar says why nothing was entered (a DEBUG line, shown with
--verbose), and the demo strategy trades within the first minutes.
"""

from __future__ import annotations

from pathlib import Path

from mt5console.core.broker.sim import SimTerminal
from mt5console.core.events import Event, Level, LogLine
from mt5console.core.runtime import Runtime
from tests.helpers import WEDNESDAY, Clock, eventually, sim_settings

EXAMPLES = Path(__file__).resolve().parents[1] / "examples" / "strategies"
DEMO = "momentum_demo_usdcad_m1"
MINUTES = 6


async def _polled(runtime: Runtime, polls: int) -> None:
    """Until the market poller has run ``polls`` more times (it runs on its own task)."""
    target = runtime.market.polls + polls
    await eventually(lambda: runtime.market.polls >= target, f"{polls} more market polls", within=5.0)


async def test_the_examples_evaluate_every_bar_and_the_demo_trades_within_minutes(tmp_path: Path) -> None:
    clock = Clock(WEDNESDAY)
    terminal = SimTerminal(seed=1, clock=clock)
    settings = sim_settings(tmp_path, strategies=EXAMPLES, poll_interval=0.02)  # as make run, polled fast
    runtime = Runtime(settings, module=lambda: terminal)
    lines: list[LogLine] = []

    def keep(event: Event) -> None:
        if isinstance(event, LogLine):
            lines.append(event)

    runtime.subscribe(keep)
    await runtime.start()
    try:
        assert runtime.engine is not None and runtime.store is not None
        runners = runtime.engine.runners
        assert len(runners) == len(list(EXAMPLES.glob("*.json")))
        await _polled(runtime, 2)
        for _ in range(MINUTES):
            clock.advance(minutes=1)
            await _polled(runtime, 2)
        minute_runners = [r for r in runners.values() if r.strategy.timeframe == "M1"]
        assert len(minute_runners) >= 4
        for runner in minute_runners:
            # A bar closes each minute; the first one may have closed before the feed's first look.
            assert runner.status.bars_seen >= MINUTES - 1, runner.strategy.strategy_id
        demo_trades = [t for t in runtime.store.open_trades() if t.strategy_id == DEMO]
        demo_trades += runtime.store.closed_trades(DEMO)
        assert demo_trades, "the demo strategy made no trade in its first minutes"
        assert runners[DEMO].status.last_signal
        quiet = [line for line in lines if line.level is Level.DEBUG and "closed: no entry (" in line.message]
        assert quiet, "no bar said why it gave no entry"
        assert any(" M1 bar " in line.message and "-> false" in line.message for line in quiet)
    finally:
        await runtime.stop()
