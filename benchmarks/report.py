"""The benchmark's results and their two renderings: a readable table and one JSON object."""

from __future__ import annotations

import json
import os
import platform
import sys
from dataclasses import dataclass
from importlib import metadata
from typing import Any, Final, Literal

from benchmarks.breakdown import Breakdown
from benchmarks.contenders import BACKTESTING_PY, BACKTRADER, MT5CONSOLE

# The targets for our engine, in bars per second relative to each peer.
TARGET_VS_BACKTESTING_PY: Final = 5.0
TARGET_VS_BACKTRADER: Final = 50.0
_LIBRARIES: Final = ("numpy", "TA-Lib", "pandas", "backtesting", "backtrader")

Status = Literal["ok", "unavailable", "failed"]


@dataclass(frozen=True)
class ContenderResult:
    """One contender's best run (``seconds`` is the best of the repeats), or why it has none."""

    name: str
    status: Status
    bars: int
    seconds: float | None = None
    trades: int | None = None
    message: str = ""
    notes: tuple[str, ...] = ()

    @property
    def bars_per_second(self) -> float | None:
        if self.seconds is None or self.seconds <= 0:
            return None
        return self.bars / self.seconds


@dataclass(frozen=True)
class BenchReport:
    bars: int
    repeat: int
    data_seconds: float
    reference_trades: int
    results: tuple[ContenderResult, ...]
    breakdown: Breakdown | None = None  # where our engine's time went (breakdown.py)
    breakdown_error: str = ""  # why there is none although our engine ran

    def result(self, name: str) -> ContenderResult | None:
        return next((result for result in self.results if result.name == name), None)

    def ratio(self, result: ContenderResult, peer_name: str) -> float | None:
        """How many times ``result``'s bars/s is the peer's (None when either did not run)."""
        peer = self.result(peer_name)
        ours = result.bars_per_second
        theirs = peer.bars_per_second if peer is not None else None
        if ours is None or theirs is None:
            return None
        return ours / theirs

    def target_seconds(self) -> float | None:
        """The longest our engine may take and meet both targets (None while a peer has not run)."""
        limits = []
        for name, target in ((BACKTESTING_PY, TARGET_VS_BACKTESTING_PY), (BACKTRADER, TARGET_VS_BACKTRADER)):
            peer = self.result(name)
            if peer is None or peer.seconds is None or peer.bars != self.bars:
                return None
            limits.append(peer.seconds / target)
        return min(limits)

    def targets_met(self) -> bool | None:
        """Whether our engine reached both targets; None while it has not run."""
        ours = self.result(MT5CONSOLE)
        if ours is None or ours.status != "ok":
            return None
        vs_bt_py = self.ratio(ours, BACKTESTING_PY)
        vs_bt = self.ratio(ours, BACKTRADER)
        if vs_bt_py is None or vs_bt is None:
            return None
        return vs_bt_py >= TARGET_VS_BACKTESTING_PY and vs_bt >= TARGET_VS_BACKTRADER


def machine() -> dict[str, Any]:
    """What the timings depend on: interpreter, processor count and library versions."""
    versions: dict[str, str] = {}
    for name in _LIBRARIES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return {
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "machine": platform.machine(),
        "cpu_count": os.cpu_count(),
        "libraries": versions,
    }


def _number(value: float | None, digits: int) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


def _ratio(value: float | None) -> str:
    return "-" if value is None else f"{value:,.2f}x"


def render_table(report: BenchReport) -> str:
    host = machine()
    lines = [
        f"EMA 9/21 cross, SL 25 / TP 40 pips, max 3 positions, EURUSD H1 tiled to {report.bars:,} bars "
        f"(best of {report.repeat})",
        f"machine: Python {host['python']} ({host['implementation']}), {host['cpu_count']} CPUs, "
        f"{host['platform']}",
        "libraries: " + ", ".join(f"{name} {version}" for name, version in host["libraries"].items()),
        f"data prepared in {report.data_seconds:.2f} s (not timed below)",
        "",
    ]
    header = ("contender", "bars", "seconds", "bars/s", "trades", "vs backtesting.py", "vs backtrader")
    rows = [header]
    for result in report.results:
        rows.append(
            (
                result.name,
                f"{result.bars:,}",
                _number(result.seconds, 3),
                _number(result.bars_per_second, 0),
                "-" if result.trades is None else f"{result.trades:,}",
                _ratio(report.ratio(result, BACKTESTING_PY)),
                _ratio(report.ratio(result, BACKTRADER)),
            )
        )
    widths = [max(len(row[column]) for row in rows) for column in range(len(header))]
    for number, row in enumerate(rows):
        cells = [row[0].ljust(widths[0])] + [
            cell.rjust(width) for cell, width in zip(row[1:], widths[1:], strict=True)
        ]
        lines.append("  ".join(cells))
        if number == 0:
            lines.append("  ".join("-" * width for width in widths))
    lines.append("")
    lines.append(
        f"reference loop (benchmarks/reference.py, the rules exactly): {report.reference_trades:,} trades"
    )
    for result in report.results:
        if result.status != "ok":
            lines.append(f"{result.name}: {result.message}")
        elif result.trades is not None and result.trades != report.reference_trades:
            difference = result.trades - report.reference_trades
            lines.append(f"{result.name}: {difference:+,} trades against the reference loop")
    lines.append(_target_line(report))
    lines.extend(_breakdown_lines(report))
    lines.append("")
    lines.append("differences from the rules each contender could not remove:")
    for result in report.results:
        for note in result.notes:
            lines.append(f"  {result.name}: {note}")
    return "\n".join(lines)


def _target_line(report: BenchReport) -> str:
    targets = f">= {TARGET_VS_BACKTESTING_PY:g}x backtesting.py and >= {TARGET_VS_BACKTRADER:g}x backtrader"
    met = report.targets_met()
    if met is None:
        return f"target ({MT5CONSOLE} {targets}): not measured, {MT5CONSOLE} did not run"
    return f"target ({MT5CONSOLE} {targets}): {'met' if met else 'NOT met'}"


def _breakdown_lines(report: BenchReport) -> list[str]:
    """Where our engine's time went, per layer and per trade, beside what the targets leave."""
    if report.breakdown_error:
        return ["", f"{MT5CONSOLE} time by layer: {report.breakdown_error}"]
    found = report.breakdown
    if found is None:
        return []

    def row(label: str, seconds: float, detail: str = "") -> str:
        per_trade = found.per_trade_us(seconds)
        each = "" if per_trade is None else f"{per_trade:7,.0f} µs a trade"
        return f"  {label:<44}{seconds:7.3f} s  {each}{detail}"

    lines = [
        "",
        f"{MT5CONSOLE} time by layer (benchmarks/breakdown.py: one more run with every terminal and store "
        f"call timed, {found.probed:.3f} s with the probes; {found.trades:,} trades):",
        row("simulated terminal", found.terminal, f"  ({found.terminal_calls:,} calls)"),
        row("store (trades and deals, SQLite)", found.store, f"  ({found.store_calls:,} calls)"),
        row("  of it SQLite's own statements, bare", found.sqlite_floor, f"  ({found.statements:,} runs)"),
        row("engine: poll, evaluation, adapter, tracker", found.rest),
        row("best timed run", found.timed),
    ]
    limit = report.target_seconds()
    if limit is not None:
        lines.append(row("what both targets allow", limit))
    return lines


def render_json(report: BenchReport) -> str:
    contenders = [
        {
            "name": result.name,
            "status": result.status,
            "message": result.message,
            "bars": result.bars,
            "seconds": result.seconds,
            "bars_per_second": result.bars_per_second,
            "trades": result.trades,
            "trades_vs_reference": None if result.trades is None else result.trades - report.reference_trades,
            "ratio_vs_backtesting_py": report.ratio(result, BACKTESTING_PY),
            "ratio_vs_backtrader": report.ratio(result, BACKTRADER),
            "notes": list(result.notes),
        }
        for result in report.results
    ]
    document = {
        "bars": report.bars,
        "repeat": report.repeat,
        "data_seconds": report.data_seconds,
        "machine": machine(),
        "reference_trades": report.reference_trades,
        "contenders": contenders,
        "targets": {
            "vs_backtesting_py": TARGET_VS_BACKTESTING_PY,
            "vs_backtrader": TARGET_VS_BACKTRADER,
            "met": report.targets_met(),
            "seconds_allowed": report.target_seconds(),
        },
        "breakdown": None if report.breakdown is None else _breakdown_json(report.breakdown),
        "breakdown_error": report.breakdown_error,
    }
    return json.dumps(document, indent=2)


def _breakdown_json(found: Breakdown) -> dict[str, Any]:
    return {
        "trades": found.trades,
        "timed_seconds": found.timed,
        "probed_seconds": found.probed,
        "terminal_seconds": found.terminal,
        "terminal_calls": found.terminal_calls,
        "store_seconds": found.store,
        "store_calls": found.store_calls,
        "sqlite_statements_seconds": found.sqlite_floor,
        "sqlite_statements": found.statements,
        "engine_seconds": found.rest,
    }


def progress(message: str) -> None:
    """A line on stderr, so that ``--json`` leaves stdout to the JSON document alone."""
    print(message, file=sys.stderr, flush=True)
