"""The benchmark's time-by-layer instrument (benchmarks/breakdown.py), on few bars: not a timing test.

It must measure the replay it claims to (same trades as an unprobed run), leave the replay as it found
it, count each outer call once, and re-run exactly the statements the store ran.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks import breakdown
from benchmarks.__main__ import main
from benchmarks.breakdown import Breakdown, _Stopwatch, bare_statements_seconds, layer_breakdown
from benchmarks.data import bench_bars
from benchmarks.report import BenchReport, ContenderResult, render_table
from benchmarks.rules import SYMBOL, TIMEFRAME, seed_strategy_json
from mt5console.core import replay as replay_module
from mt5console.core.broker.sim import SimTerminal
from mt5console.core.replay import run_replay
from mt5console.core.store import Store

BARS = 3000


@pytest.fixture(scope="module")
def measured() -> tuple[Breakdown, int]:
    bars = bench_bars(BARS)
    plain = run_replay(seed_strategy_json(), bars.rates, symbol=SYMBOL, timeframe=TIMEFRAME)
    return layer_breakdown(bars, plain.seconds), len(plain.trades)


def test_the_probed_run_is_the_same_replay_and_every_layer_took_time(measured: tuple[Breakdown, int]) -> None:
    found, plain_trades = measured
    assert plain_trades > 20
    assert found.trades == plain_trades
    assert found.terminal > 0 and found.terminal_calls > 4 * found.trades  # poll, rates, tick, order...
    assert found.store > 0 and found.store_calls >= 2 * found.trades  # an open and a close each
    # Every trade: its open, its close's read and update, its deals, and their transactions.
    assert found.statements > 4 * found.trades
    assert 0 < found.sqlite_floor < found.store
    assert found.terminal + found.store < found.probed
    assert found.rest == pytest.approx(max(0.0, found.timed - found.terminal - found.store))
    assert found.per_trade_us(found.sqlite_floor) == pytest.approx(found.sqlite_floor / found.trades * 1e6)


def test_the_probes_are_taken_away_afterwards(measured: tuple[Breakdown, int]) -> None:
    assert replay_module.SimTerminal is SimTerminal
    assert "in_memory" not in vars(Store)  # the patch on the class is gone: StoreBase's classmethod again
    assert Store.in_memory().path == Path(":memory:")


def test_a_call_made_inside_a_timed_call_is_not_counted_twice() -> None:
    stopwatch = _Stopwatch()
    inner = stopwatch.wrap(lambda: 1)
    outer = stopwatch.wrap(lambda: inner() + 1)
    assert outer() == 2 and outer() == 2
    assert stopwatch.calls == 2


def test_the_bare_statements_are_run_and_a_bad_one_is_not_hidden() -> None:
    statements = [
        ("BEGIN IMMEDIATE", (), False),
        ("SELECT count(*) FROM trades", (), False),
        ("COMMIT", (), False),
    ]
    assert bare_statements_seconds(statements, []) >= 0
    with pytest.raises(Exception, match="no such table"):
        bare_statements_seconds([("SELECT * FROM no_such_table", (), False)], [])


def test_the_table_shows_each_layer_per_trade_beside_what_the_targets_allow() -> None:
    found = Breakdown(
        timed=1.0,
        probed=1.2,
        terminal=0.3,
        terminal_calls=20_000,
        store=0.2,
        store_calls=4000,
        sqlite_floor=0.06,
        statements=12_000,
        trades=2000,
    )
    report = BenchReport(
        bars=100_000,
        repeat=1,
        data_seconds=0.1,
        reference_trades=2000,
        results=(
            ContenderResult("mt5console", "ok", 100_000, seconds=1.0, trades=2000),
            ContenderResult("backtesting.py", "ok", 100_000, seconds=1.0, trades=2000),
            ContenderResult("backtrader", "ok", 100_000, seconds=12.0, trades=2000),
        ),
        breakdown=found,
    )
    table = " ".join(render_table(report).split())  # the words and numbers, not the column widths
    assert "simulated terminal 0.300 s 150 µs a trade (20,000 calls)" in table
    assert "of it SQLite's own statements, bare 0.060 s 30 µs a trade" in table
    assert "engine: poll, evaluation, adapter, tracker 0.500 s 250 µs a trade" in table
    # 5x backtesting.py allows 0.2 s, 50x backtrader 0.24 s: the stricter one, 100 µs a trade.
    assert "what both targets allow 0.200 s 100 µs a trade" in table
    assert report.target_seconds() == pytest.approx(0.2)


def test_a_failing_breakdown_is_reported_and_fails_the_bench(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*_: object) -> Breakdown:
        raise RuntimeError("probe broke")

    monkeypatch.setattr("benchmarks.__main__.layer_breakdown", broken)
    assert main(["--bars", "300", "--json"]) == 1
    report = json.loads(capsys.readouterr().out)
    assert report["breakdown"] is None
    assert report["breakdown_error"] == "failed: RuntimeError: probe broke"


def test_the_bench_json_carries_the_breakdown(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--bars", "400", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    ours = report["contenders"][0]
    found = report["breakdown"]
    assert found["trades"] == ours["trades"]
    assert found["timed_seconds"] == ours["seconds"]
    assert found["terminal_calls"] > 0 and found["sqlite_statements"] > 0
    assert report["targets"]["seconds_allowed"] > 0
    assert breakdown.Breakdown.__dataclass_fields__.keys() >= {"terminal", "store", "sqlite_floor"}
