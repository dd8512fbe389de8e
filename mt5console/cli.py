"""Command line entry point: parses arguments and picks the front end; no logic of its own."""

from __future__ import annotations

import argparse
import io
import sys
from collections.abc import Sequence

from mt5console import __version__

SUBCOMMANDS = ("check", "replay")

USAGE = """\
usage: mt5console [runtime options]            the console (runtime inside)
       mt5console --no-ui [runtime options]    headless: log lines on stdout, Ctrl-C stops
       mt5console check STRATEGY.json          validate a strategy (exit 0 valid, 2 invalid)
       mt5console replay STRATEGY.json --data BARS.csv [--symbol S] [--timeframe TF]
                         [--spread POINTS] [--json]   the live engine on the simulator over past bars
       mt5console --version
'mt5console check --help' and 'mt5console replay --help' describe the subcommands."""
# The top of --help: one short usage line (the forms are in the epilog), then where else options live.
HELP_USAGE = "mt5console [runtime options]   (every form of the command: at the end)"
DESCRIPTION = """\
A terminal trading console for MetaTrader 5. Every runtime option below can also be set by the
environment variable in [brackets] (a .env file in the working folder is read too), or in
config.toml under its name with underscores (--max-lot as max_lot under [limits]).
Precedence: command line > environment > config file > defaults."""


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    for stream in (sys.stdout, sys.stderr):
        if isinstance(stream, io.TextIOWrapper):
            # Redirected to a file (a service manager, `> out.txt`), a stream has the locale's encoding,
            # on Windows a code page: a strategy, symbol or folder name outside it would end a `check`
            # or a replay with a traceback, or cost --no-ui its log line. Such characters are escaped.
            stream.reconfigure(errors="backslashreplace")
    if args and args[0] == "check":
        from mt5console.subcommands import check_main

        return check_main(args[1:])
    if args and args[0] == "replay":
        from mt5console.replay_cli import replay_main

        return replay_main(args[1:])
    return run_main(args)


def run_main(args: list[str]) -> int:
    from mt5console.config import ConfigError, build_parser, load_settings

    parser = build_parser()
    parser.usage = HELP_USAGE
    parser.description = DESCRIPTION
    parser.epilog = USAGE
    # The description and the epilog are laid out by hand (the epilog is a table of the command's
    # forms): kept as written, not run together into one paragraph.
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    if "--version" in args:
        print(f"mt5console {__version__}")
        return 0
    if any(a in ("-h", "--help") for a in args):
        parser.print_help()
        return 0
    try:
        settings = load_settings(args)
    except ConfigError as error:
        print(f"mt5console: {error}", file=sys.stderr)
        return 2
    except SystemExit as exit_:  # argparse's own errors (unknown option, missing value)
        return 2 if exit_.code not in (0, None) else 0
    if not settings.no_ui:
        from mt5console.ui.app import run_console

        return run_console(settings)
    from mt5console import headless

    return headless.main(settings)


if __name__ == "__main__":
    sys.exit(main())
