"""The subcommands ``mt5console check`` (and, with the replay, ``mt5console replay``)."""

from __future__ import annotations

import argparse
import functools
import sys
from collections.abc import Sequence
from pathlib import Path

from mt5console.core.broker.models import SymbolSpec
from mt5console.core.broker.mt5 import symbol_spec
from mt5console.core.broker.volume import fit_volume, format_volume, plain_volume
from mt5console.core.strategy.filters import unsupported_enabled_filters
from mt5console.core.strategy.model import Strategy, StrategyError, load_strategy_file
from mt5console.core.strategy.summary import summarize


def reference_spec(symbol: str) -> SymbolSpec | None:
    """The simulated broker's specification of ``symbol`` (None for a symbol it does not list).

    ``check`` runs without a terminal, so lot sizes are checked against typical broker specs; the
    running console checks them again against the real broker's.
    """
    from mt5console.core.broker.sim import SimTerminal

    terminal = SimTerminal(seed=1)
    if not terminal.initialize():
        return None
    try:
        info = terminal.symbol_info(symbol)
        return None if info is None else symbol_spec(info)
    finally:
        terminal.shutdown()


def check_main(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="mt5console check",
        description="Validate a strategy JSON file: exit 0 and a summary when valid, "
        "2 and every error when not.",
        allow_abbrev=False,
    )
    parser.add_argument("strategy", type=Path, help="the strategy JSON file")
    try:
        args = parser.parse_args(list(argv))
    except SystemExit as exit_:
        return 0 if exit_.code in (0, None) else 2
    # Asked by the validation and again by the notes: one simulated terminal for both.
    spec_of = functools.cache(reference_spec)
    try:
        strategy = load_strategy_file(args.strategy, symbol_spec=spec_of)
    except StrategyError as error:
        print(f"{args.strategy}: invalid strategy", file=sys.stderr)
        for line in str(error).splitlines():
            print(f"  {line}", file=sys.stderr)
        return 2
    unsupported = unsupported_enabled_filters(strategy.filters)
    if unsupported:
        print(f"{args.strategy}: the console cannot run this strategy", file=sys.stderr)
        for line in unsupported:
            print(f"  rules.{line}", file=sys.stderr)  # the field's path, as for the other errors
        return 2
    print(f"{args.strategy}: valid")
    print(summarize(strategy))
    for note in check_notes(strategy, spec_of(strategy.symbol)):
        print(f"note: {note}")
    return 0


def check_notes(strategy: Strategy, spec: SymbolSpec | None) -> list[str]:
    """What ``check`` cannot settle without the trader's terminal, or what the terminal will change;
    ``spec``: the reference specification of the strategy's symbol (None: the simulator has none)."""
    if spec is None:
        return [
            f"{strategy.symbol} is not one of the simulator's symbols: the terminal it runs on must know "
            "it, and its lot limits are checked when it starts there"
        ]
    risk = strategy.risk
    if risk.dynamic.enabled:
        return []
    fitted = fit_volume(risk.lot_size, spec)  # valid: load_strategy_file checked it against spec
    sent = fitted.volume
    if sent == risk.lot_size:
        return []
    if fitted.clamped_to_max:
        return [
            f"lotSize {plain_volume(risk.lot_size)} trades as {format_volume(sent, spec)} lots on "
            f"{strategy.symbol}: lots are cut to its maximum {format_volume(spec.volume_max, spec)}"
            " (as on a typical broker; the terminal's own maximum decides)"
        ]
    return [
        f"lotSize {plain_volume(risk.lot_size)} trades as {format_volume(sent, spec)} lots on "
        f"{strategy.symbol}: lots are rounded down to its volume step {format_volume(spec.volume_step, spec)}"
        " (as on a typical broker; the terminal's own step decides)"
    ]
