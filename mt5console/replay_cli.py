"""``mt5console replay STRATEGY.json --data BARS.csv``: argument parsing and output; the replay itself
is ``mt5console.core.replay``.

Exit codes: 0 done (also when the reader of the output went away, as ``| head -1`` does: the rest
is dropped quietly); 2 bad arguments, strategy or data (the message on stderr names what is wrong);
1 the engine reported an error during the replay.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from time import monotonic
from typing import TextIO

from mt5console.core.broker.server_clock import offset_from_hours
from mt5console.core.replay import (
    MarketOptionError,
    ReplayError,
    ReplayResult,
    UnrunnableStrategy,
    run_replay,
)
from mt5console.core.replay_report import ReplayTrade
from mt5console.core.strategy.model import StrategyError
from mt5console.core.strategy.validation import read_json_object

PROG = "mt5console replay"
BAR_WIDTH = 30


def _points(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a whole number of points, not {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be a whole number of points >= 0, not {value}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Backtest a strategy: the live engine on the simulated terminal, on a replay clock. "
        "A signal on a bar's close fills at the next bar's open; stops and targets are checked on every "
        "bar's high and low (the stop first when both lie in one bar); positions left open at the end "
        "close at the last close.",
        allow_abbrev=False,
    )
    parser.add_argument("strategy", type=Path, help="the strategy JSON file")
    parser.add_argument(
        "--data",
        type=Path,
        required=True,
        metavar="BARS.csv",
        help="bars to replay: a header with time (ISO 8601 or epoch seconds, UTC), open, high, low, "
        "close, optionally volume and spread (points); prices are bid",
    )
    parser.add_argument("--symbol", help="the symbol the bars are of (default: the strategy's)")
    parser.add_argument(
        "--timeframe", type=str.upper, help="the bars' timeframe, e.g. H1 (default: the strategy's)"
    )
    parser.add_argument(
        "--spread",
        type=_points,
        metavar="POINTS",
        help="spread for bars without one, no spread column or a blank cell (default: the symbol's "
        "typical spread)",
    )
    parser.add_argument(
        "--data-utc-offset",
        type=_hours,
        metavar="HOURS",
        help="hours the bars' times are ahead of UTC, e.g. 2 for bars exported by a MetaTrader whose "
        "trade server runs at UTC+2 (default: the times are UTC); for times without a zone (naive ISO, "
        "epoch seconds as MetaTrader's rates give them): refused for a file whose times carry one",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of the table")
    return parser


def _hours(text: str) -> float:
    try:
        hours = float(text)
        offset_from_hours(hours)
    except ValueError as error:
        raise argparse.ArgumentTypeError(f"{text!r} is not hours ahead of UTC: {error}") from None
    return hours


class ProgressBar:
    """A one-line progress bar on a terminal, redrawn at most ten times a second."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream
        self._last = 0.0
        self._drawn = False

    def __call__(self, done: int, total: int) -> None:
        now = monotonic()
        if now - self._last < 0.1 and done < total:
            return
        self._last = now
        share = done / total if total else 1.0
        filled = round(BAR_WIDTH * share)
        self._stream.write(
            f"\rreplaying [{'#' * filled}{'.' * (BAR_WIDTH - filled)}] {share:4.0%} {done:,}/{total:,} bars"
        )
        self._stream.flush()
        self._drawn = True

    def clear(self) -> None:
        if self._drawn:
            self._stream.write("\r\033[K")
            self._stream.flush()
            self._drawn = False


def _time(when: datetime) -> str:
    return when.strftime("%Y-%m-%d %H:%M:%S")


# An exit at 22:40 on H1 bars looks wrong unless the reader knows when the simulator's ticks come.
TICK_TIMES_NOTE = (
    "(times are those of the simulated ticks: four per bar, at its open, its low and high a third and two "
    "thirds into it (the high first on a falling bar), and its close 1 s before it ends)"
)


def render_table(result: ReplayResult) -> str:
    digits = result.digits

    def row(trade: ReplayTrade) -> tuple[str, ...]:
        return (
            str(trade.ticket),
            trade.side,
            f"{trade.volume:g}",
            _time(trade.entry_time),
            f"{trade.entry_price:.{digits}f}",
            _time(trade.exit_time),
            f"{trade.exit_price:.{digits}f}",
            trade.exit_reason,
            f"{trade.profit:,.2f}",
        )

    header = ("ticket", "side", "volume", "entry (UTC)", "price", "exit (UTC)", "price", "reason", "profit")
    rows = [header, *(row(trade) for trade in result.trades)]
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    right = {2, 4, 6, 8}  # numbers
    lines = [
        f"{result.symbol} {result.timeframe}: {result.bars:,} bars replayed in {result.seconds:.2f} s "
        f"({result.bars_per_second:,.0f} bars/s; the engine acted on {result.engine_turns:,} of them)",
        "",
    ]
    for number, cells in enumerate(rows):
        lines.append(
            "  ".join(
                cell.rjust(width) if i in right else cell.ljust(width)
                for i, (cell, width) in enumerate(zip(cells, widths, strict=True))
            ).rstrip()
        )
        if number == 0:
            lines.append("  ".join("-" * width for width in widths))
    if not result.trades:
        lines.append("(no trades)")
    else:
        lines.append(TICK_TIMES_NOTE)
    summary = result.summary
    if summary.profit_factor is not None:
        factor = f"{summary.profit_factor:.2f}"
    else:
        factor = "n/a (no trades)" if summary.trades == 0 else "n/a (no losing trade)"
    lines += [
        "",
        f"trades {summary.trades}: {summary.wins} won, {summary.losses} lost; "
        f"net profit {summary.net_profit:,.2f}; max drawdown {summary.max_drawdown:,.2f} (of closed trades); "
        f"profit factor {factor}",
    ]
    return "\n".join(lines + refusal_lines(result) + [f"note: {note}" for note in result.notes])


def refusal_lines(result: ReplayResult) -> list[str]:
    """The entries the engine refused, by reason, each with its first refusal in full."""
    if not result.refusals:
        return []
    total = sum(refusal.count for refusal in result.refusals)
    lines = [f"entries refused: {total:,}"]
    for refusal in result.refusals:
        if refusal.example == refusal.reason:  # a reason without details ("maxPositions 3 reached ...")
            lines.append(f"  {refusal.count:,} for {refusal.reason}")
            continue
        detail = refusal.example.removeprefix(f"{refusal.reason}: ")
        lines.append(f"  {refusal.count:,} for {refusal.reason}; the first: {detail}")
    return lines


def _fail(message: str) -> int:
    print(f"{PROG}: {message}", file=sys.stderr)
    return 2


def replay_main(argv: Sequence[str]) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(list(argv))
    except SystemExit as exit_:  # argparse printed the usage and the error (or the help)
        return 0 if exit_.code in (0, None) else 2
    progress = ProgressBar(sys.stderr) if not args.json and sys.stderr.isatty() else None
    try:
        definition = read_json_object(args.strategy)
        result = run_replay(
            definition,
            args.data,
            symbol=args.symbol,
            timeframe=args.timeframe,
            spread=args.spread,
            progress=progress,
            data_utc_offset=args.data_utc_offset,
        )
    except MarketOptionError as error:  # --symbol or --timeframe, not the strategy's file
        return _fail(f"--{error.option}: {error.problem}")
    except StrategyError as error:
        # Worded as ``mt5console check`` words it: a valid strategy the console cannot run is not invalid.
        verdict = (
            "the console cannot run this strategy"
            if isinstance(error, UnrunnableStrategy)
            else "invalid strategy"
        )
        print(f"{args.strategy}: {verdict}", file=sys.stderr)
        for line in str(error).splitlines():
            print(f"  {line}", file=sys.stderr)
        return 2
    except ReplayError as error:
        print(f"{PROG}: {error}", file=sys.stderr)
        return 1
    except ValueError as error:  # the bars: the simulator's message names the file, line and field
        return _fail(str(error))
    finally:
        if progress is not None:
            progress.clear()
    try:
        if args.json:
            print(json.dumps(result.to_json()))
        else:
            print(render_table(result))
        sys.stdout.flush()
    except BrokenPipeError:
        _drop_stdout()
    if args.json:
        for line in (
            *refusal_lines(result),
            *(f"note: {note}" for note in result.notes),
        ):  # beside the JSON, whose shape is the contract's
            print(line, file=sys.stderr)
    return 0


def _drop_stdout() -> None:
    """The reader closed the pipe (``| head -1``): what is left unwritten is not wanted. stdout is
    pointed at the null device so that the interpreter's last flush does not fail again on exit."""
    null = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(null, sys.stdout.fileno())
    finally:
        os.close(null)
