"""``python -m benchmarks`` (``make bench``): time every registered contender on the same bars.

Exit status: 0 when every available contender ran, 1 when one failed, 2 on bad arguments.
"""

from __future__ import annotations

import argparse
import sys
import traceback
from collections.abc import Callable, Sequence
from time import perf_counter

from benchmarks.breakdown import Breakdown, layer_breakdown
from benchmarks.contenders import MT5CONSOLE, Contender, registered_contenders
from benchmarks.data import DEFAULT_BARS, BenchBars, bench_bars
from benchmarks.reference import reference_trades
from benchmarks.report import BenchReport, ContenderResult, progress, render_json, render_table

# Fewer bars than this leave the EMAs barely warm: no trade to count, nothing worth timing.
MIN_BARS = 100


def _at_least(minimum: int, what: str) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{what} must be a whole number, not {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"{what} must be >= {minimum}, not {value}")
        return value

    return parse


def parse_arguments(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description="Time the seed's EMA 9/21 cross (SL 25 / TP 40 pips) on mt5console, backtesting.py "
        "and backtrader on the same EURUSD H1 bars.",
    )
    parser.add_argument(
        "--bars",
        type=_at_least(MIN_BARS, "--bars"),
        default=DEFAULT_BARS,
        help=f"bars to replay (the EURUSD H1 sample tiled; default {DEFAULT_BARS})",
    )
    parser.add_argument(
        "--repeat",
        type=_at_least(1, "--repeat"),
        default=1,
        help="runs per contender; the best time is kept (default 1)",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of the table")
    return parser.parse_args(argv)


def run_contender(contender: Contender, bars: BenchBars, repeat: int) -> ContenderResult:
    """Best of ``repeat`` runs; a failure or a trade count that changes between runs is reported."""
    if contender.run is None:
        return ContenderResult(
            contender.name, "unavailable", len(bars), message=contender.unavailable, notes=contender.notes
        )
    best_seconds: float | None = None
    trade_counts: set[int] = set()
    for attempt in range(1, repeat + 1):
        progress(f"running {contender.name} on {len(bars):,} bars ({attempt}/{repeat})...")
        try:
            trades, seconds = contender.run(bars)
        except Exception as error:
            traceback.print_exc(file=sys.stderr)
            return ContenderResult(
                contender.name,
                "failed",
                len(bars),
                message=f"failed: {type(error).__name__}: {error}",
                notes=contender.notes,
            )
        trade_counts.add(trades)
        best_seconds = seconds if best_seconds is None else min(best_seconds, seconds)
    if len(trade_counts) != 1:
        return ContenderResult(
            contender.name,
            "failed",
            len(bars),
            seconds=best_seconds,
            message=f"failed: trade counts differ between runs: {sorted(trade_counts)}",
            notes=contender.notes,
        )
    return ContenderResult(
        contender.name,
        "ok",
        len(bars),
        seconds=best_seconds,
        trades=trade_counts.pop(),
        notes=contender.notes,
    )


def run_breakdown(results: Sequence[ContenderResult], bars: BenchBars) -> tuple[Breakdown | None, str]:
    """Our engine's time by layer (one more, probed run), once it has run; or why there is none."""
    ours = next((result for result in results if result.name == MT5CONSOLE), None)
    if ours is None or ours.status != "ok" or ours.seconds is None:
        return None, ""
    progress(f"running {MT5CONSOLE} once more with probes (time by layer)...")
    try:
        return layer_breakdown(bars, ours.seconds), ""
    except Exception as error:
        traceback.print_exc(file=sys.stderr)
        return None, f"failed: {type(error).__name__}: {error}"


def main(argv: Sequence[str] | None = None) -> int:
    arguments = parse_arguments(argv)
    progress(f"preparing {arguments.bars:,} bars...")
    start = perf_counter()
    bars = bench_bars(arguments.bars)
    data_seconds = perf_counter() - start
    expected_trades = len(reference_trades(bars.rates))
    results = tuple(run_contender(contender, bars, arguments.repeat) for contender in registered_contenders())
    breakdown, breakdown_error = run_breakdown(results, bars)
    report = BenchReport(
        bars=len(bars),
        repeat=arguments.repeat,
        data_seconds=data_seconds,
        reference_trades=expected_trades,
        results=results,
        breakdown=breakdown,
        breakdown_error=breakdown_error,
    )
    print(render_json(report) if arguments.json else render_table(report))
    failed = any(result.status == "failed" for result in results) or bool(breakdown_error)
    return 1 if failed else 0


if __name__ == "__main__":
    from benchmarks import console_load  # the console under load: its own report after the peers'

    sys.exit(max(main(), console_load.main(["--json"] if "--json" in sys.argv[1:] else [])))
