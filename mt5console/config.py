"""Loads the Settings the runtime is built from.

Precedence, highest first: the command line; the environment (MT5C_* names, then the WE_V2_* names
of the older executor; the real environment, then a ``.env`` file in the working folder); the TOML
config file (``--config`` / MT5C_CONFIG, else ``config.toml`` in the user config dir); the defaults
of ``mt5console.core.settings``.

Every bad value raises ConfigError naming the setting, where it came from and what is accepted;
secrets (password, pairing key, Pusher secret) are never quoted. Relative paths are taken from the
working folder, or from the config file's folder for paths written in the config file.
"""

from __future__ import annotations

import argparse
import difflib
import importlib
import io
import math
import os
import tomllib
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn, TypeVar
from urllib.parse import urlsplit

import platformdirs
from dotenv import dotenv_values

from mt5console.core.agent.pairing import AgentFileError, apply_saved_identity, needs_pairing
from mt5console.core.broker.server_clock import offset_from_hours
from mt5console.core.commands.pusher.config import PusherConfigError, check_pusher_settings
from mt5console.core.settings import BROKER_KINDS, Limits, Settings

APP_NAME = "mt5console"
CONFIG_FILE_NAME = "config.toml"
DOTENV_FILE_NAME = ".env"
ENV_PREFIX = "MT5C_"
_TRUE = ("true", "1", "yes", "on")
_FALSE = ("false", "0", "no", "off")


class ConfigError(Exception):
    """A setting is wrong; the message names it, where it came from and what is accepted."""


class _Invalid(Exception):
    """Raised by a value parser with the reason only; the caller adds the setting and the source."""


T = TypeVar("T")
Parser = Callable[[object, Path], object]  # (raw value, folder relative paths start from) -> value


# --- value parsers: each accepts a string (command line, environment) or a TOML value -----------


def _string(raw: object, base: Path) -> str:
    if not isinstance(raw, str):
        raise _Invalid("is not a string")
    if not raw.strip():
        raise _Invalid("is empty")
    return raw.strip()


def _secret(raw: object, base: Path) -> str:
    # Not stripped: a password may legitimately begin or end with a space.
    if not isinstance(raw, str):
        raise _Invalid("is not a string")
    if not raw:
        raise _Invalid("is empty")
    return raw


def _whole(minimum: int, maximum: int | None = None) -> Callable[[object, Path], int]:
    accepted = f"a whole number from {minimum} to {maximum}" if maximum else f"a whole number >= {minimum}"

    def parse(raw: object, base: Path) -> int:
        if isinstance(raw, str):
            try:
                value = int(raw.strip())
            except ValueError:
                raise _Invalid(f"is not {accepted}") from None
        elif isinstance(raw, int) and not isinstance(raw, bool):
            value = raw
        else:
            raise _Invalid(f"is not {accepted}")
        if value < minimum or (maximum is not None and value > maximum):
            raise _Invalid(f"is not {accepted}")
        return value

    return parse


def _positive(maximum: float | None = None) -> Callable[[object, Path], float]:
    def parse(raw: object, base: Path) -> float:
        if isinstance(raw, str):
            try:
                value = float(raw.strip())
            except ValueError:
                raise _Invalid("is not a number") from None
        elif isinstance(raw, int | float) and not isinstance(raw, bool):
            value = float(raw)
        else:
            raise _Invalid("is not a number")
        if not math.isfinite(value) or value <= 0:
            raise _Invalid("is not a positive number")
        if maximum is not None and value > maximum:
            raise _Invalid(f"is more than {maximum:g}")
        return value

    return parse


def _boolean(raw: object, base: Path) -> bool:
    if isinstance(raw, bool):
        return raw
    if isinstance(raw, str) and raw.strip().lower() in _TRUE + _FALSE:
        return raw.strip().lower() in _TRUE
    raise _Invalid(f"is not one of {', '.join(_TRUE + _FALSE)}")


def _path(*, must_exist: bool) -> Callable[[object, Path], Path]:
    def parse(raw: object, base: Path) -> Path:
        path = Path(os.path.expanduser(_string(raw, base)))
        path = path if path.is_absolute() else base / path
        if must_exist and not path.exists():
            raise _Invalid(f"does not exist ({path})")
        return path

    return parse


def _expanded(raw: object, base: Path) -> str:
    return os.path.expanduser(_string(raw, base))


def _url(raw: object, base: Path) -> str:
    text = _string(raw, base)
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise _Invalid("is not an http:// or https:// URL")
    return text.rstrip("/")  # callers append "/agents/..." paths


def _hours_from_utc(*, auto: bool) -> Callable[[object, Path], float | str]:
    """Hours ahead of UTC in whole quarter hours (``3``, ``-4.5``), or ``auto`` where allowed."""
    accepted = "auto or hours ahead of UTC (e.g. 2, 3 or -4.5)" if auto else "hours ahead of UTC (e.g. 2)"

    def parse(raw: object, base: Path) -> float | str:
        if isinstance(raw, str) and auto and raw.strip().lower() == "auto":
            return "auto"
        try:
            hours = float(raw.strip()) if isinstance(raw, str) else raw
        except ValueError:
            raise _Invalid(f"is not {accepted}") from None
        if isinstance(hours, bool) or not isinstance(hours, int | float) or not math.isfinite(hours):
            raise _Invalid(f"is not {accepted}")
        try:
            offset_from_hours(hours)
        except ValueError as bad:
            raise _Invalid(f"is not {accepted}: {bad}") from None
        return float(hours)

    return parse


def _broker(raw: object, base: Path) -> str:
    kind = _string(raw, base).lower()
    if kind not in BROKER_KINDS:
        raise _Invalid(f"is not one of {', '.join(BROKER_KINDS)}")
    return kind


def normalize_symbol(name: str) -> str:
    """Upper-case the symbol, but keep a broker suffix after a dot as typed (``eurusd.m`` ->
    ``EURUSD.m``): suffixes are the broker's own names."""
    head, dot, suffix = name.strip().partition(".")
    if not head or any(ch.isspace() for ch in name.strip()) or (dot and not suffix):
        raise _Invalid(f"has a bad symbol name {name!r}")
    return head.upper() + dot + suffix


def _symbols(raw: object, base: Path) -> tuple[str, ...]:
    if isinstance(raw, str):
        names: list[object] = list(raw.split(","))
    elif isinstance(raw, list):
        names = list(raw)
    else:
        raise _Invalid("is not a comma-separated list of symbols")
    symbols: list[str] = []
    for name in names:
        if not isinstance(name, str) or not name.strip():
            raise _Invalid("has an empty entry (give symbols separated by single commas)")
        symbol = normalize_symbol(name)
        if symbol not in symbols:
            symbols.append(symbol)
    return tuple(symbols)


# --- the options ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Option:
    name: str  # the Settings field (or Limits field when section == "limits"); the config file key
    parse: Parser
    group: str
    help: str
    flags: tuple[str, ...] = ()  # default: --name-with-dashes
    aliases: tuple[str, ...] = ()  # WE_V2_* environment names, read after MT5C_<NAME>
    secret: bool = False
    switch: bool = False  # a flag without a value (store_true)
    section: str | None = None
    env_name: str | None = None  # when not MT5C_<NAME>

    @property
    def cli_flags(self) -> tuple[str, ...]:
        return self.flags or ("--" + self.name.replace("_", "-"),)

    @property
    def env_names(self) -> tuple[str, ...]:
        return (self.env_name or f"MT5C_{self.name.upper()}", *self.aliases)

    @property
    def file_key(self) -> str:
        return f"[{self.section}] {self.name}" if self.section else self.name


_T, _F, _M, _P, _S = "terminal", "files", "market data", "platform", "pusher"
_OPTIONS: tuple[_Option, ...] = (
    _Option("broker", _broker, _T, "auto (mt5 where MetaTrader5 imports, else sim), sim, mt5, mt5linux"),
    _Option("mt5_path", _expanded, _T, "terminal64.exe to start", aliases=("WE_V2_MT5_PATH",)),
    _Option("login", _whole(1), _T, "trading account number"),
    _Option("password", _secret, _T, "trading account password", secret=True),
    _Option("server", _string, _T, "trade server name"),
    _Option("mt5_host", _string, _T, "mt5linux bridge host"),
    _Option("mt5_port", _whole(1, 65535), _T, "mt5linux bridge port"),
    _Option("reconnect_interval", _positive(), _T, "seconds between reconnect attempts"),
    _Option("connect_attempts", _whole(0), _T, "attempts at start before exit code 3 (0 = keep trying)"),
    _Option(
        "server_utc_offset",
        _hours_from_utc(auto=True),
        _T,
        "hours the trade server's clock is ahead of UTC, or auto: learned from live ticks (default)",
    ),
    _Option("data_dir", _path(must_exist=False), _F, "folder of the database and logs"),
    _Option("strategies", _path(must_exist=True), _F, "strategy JSON file or folder to start"),
    _Option("symbols", _symbols, _M, "comma-separated symbols to track"),
    _Option("poll_interval", _positive(), _M, "seconds between market-data polls"),
    _Option("api_url", _url, _P, "the platform's API URL", aliases=("WE_V2_PLATFORM_API_URL",)),
    _Option(
        "pairing_key",
        _secret,
        _P,
        "pairing key",
        flags=("--key", "--pairing-key"),
        aliases=("WE_V2_PLATFORM_API_KEY",),
        secret=True,
    ),
    _Option("agent_id", _string, _P, "agent id (else paired and saved)", aliases=("WE_V2_EXECUTOR_ID",)),
    _Option("heartbeat_interval", _positive(), _P, "seconds between heartbeats to the platform"),
    _Option("prices_interval", _positive(), _P, "seconds between price batches sent to the platform"),
    _Option("jobs_interval", _positive(), _P, "seconds between polls for the next platform job"),
    _Option("metaeditor_path", _expanded, _P, "metaeditor64.exe (default: next to the terminal)"),
    _Option("compile_timeout", _positive(), _P, "seconds a compile job may take"),
    _Option("ea_answer_timeout", _positive(), _P, "seconds to wait for the EA controller's answer"),
    _Option("artifact_max_bytes", _whole(1), _P, "largest EA source a compile job may bring (bytes)"),
    _Option("pusher_key", _string, _S, "Pusher app key", aliases=("WE_V2_PUSHER_KEY",)),
    _Option("pusher_cluster", _string, _S, "Pusher cluster", aliases=("WE_V2_PUSHER_CLUSTER",)),
    _Option("pusher_channel", _string, _S, "command channel", aliases=("WE_V2_PUSHER_CHANNEL",)),
    _Option("pusher_host", _string, _S, "self-hosted Pusher-protocol server host"),
    _Option("pusher_port", _whole(1, 65535), _S, "its port"),
    _Option("pusher_insecure", _boolean, _S, "ws:// instead of wss://", switch=True),
    _Option("pusher_auth_endpoint", _url, _S, "private-channel auth URL"),
    _Option("pusher_secret", _secret, _S, "Pusher app secret (signs channel auth here)", secret=True),
    _Option("sim_seed", _whole(0), "simulator", "random seed of the simulated terminal"),
    _Option("sim_data", _path(must_exist=True), "simulator", "CSV of bars to replay as its price feed"),
    _Option("sim_symbol", _string, "simulator", "symbol of the --sim-data bars (default: the file name)"),
    _Option("sim_state", _path(must_exist=False), "simulator", "its account file (default in the data dir)"),
    _Option(
        "sim_server_utc_offset",
        _hours_from_utc(auto=False),
        "simulator",
        "hours its trade server's clock is ahead of UTC (default 0)",
    ),
    _Option("theme", _string, "front end", "theme name"),
    _Option("verbose", _boolean, "front end", "debug log lines", flags=("--verbose", "-v"), switch=True),
    _Option("no_ui", _boolean, "front end", "headless: log lines to stdout", switch=True),
    _Option("max_lot", _positive(), "limits", "largest volume of one order", section="limits"),
    _Option("max_positions", _whole(1), "limits", "most open positions", section="limits"),
    _Option(
        "max_daily_loss_pct", _positive(100), "limits", "daily loss %% that stops trading", section="limits"
    ),
    _Option("max_drawdown_pct", _positive(100), "limits", "drawdown %% that stops trading", section="limits"),
)
_config_path = _path(must_exist=False)
_CONFIG = _Option("config", _config_path, _F, "TOML config file", env_name="MT5C_CONFIG")
_FILE_KEYS = {option.name: option for option in _OPTIONS if option.section is None}
_LIMIT_KEYS = {option.name: option for option in _OPTIONS if option.section == "limits"}


class _RaisingParser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise ConfigError(message)


def build_parser(*, add_help: bool = False) -> argparse.ArgumentParser:
    """The runtime options; use as ``argparse.ArgumentParser(parents=[build_parser()])``. Every
    default is None ("not given"), so that lower layers apply; abbreviations are off, so that
    ``--data`` of a subcommand can never be read as ``--data-dir``."""
    parser = _RaisingParser(prog=APP_NAME, add_help=add_help, allow_abbrev=False)
    groups: dict[str, argparse._ArgumentGroup] = {}
    for option in (_CONFIG, *_OPTIONS):
        if option.group not in groups:
            groups[option.group] = parser.add_argument_group(option.group)
        group = groups[option.group]
        env = ", ".join(option.env_names)
        if option.switch:
            group.add_argument(
                *option.cli_flags,
                dest=option.name,
                action="store_true",
                default=None,
                help=f"{option.help} [{env}]",
            )
        else:
            group.add_argument(
                *option.cli_flags,
                dest=option.name,
                default=None,
                metavar=option.name.upper(),
                help=f"{option.help} [{env}]",
            )
    return parser


def load_settings(
    argv: Sequence[str], environ: Mapping[str, str] | None = None, cwd: Path | None = None
) -> Settings:
    """Parse the runtime options in ``argv`` and build the Settings (see the module docstring)."""
    parser = build_parser(add_help=True)
    namespace, unrecognised = parser.parse_known_args(list(argv))
    if unrecognised:
        raise ConfigError(_unrecognised(unrecognised, parser))
    return settings_from_namespace(namespace, environ, cwd)


def _unrecognised(arguments: Sequence[str], parser: argparse.ArgumentParser) -> str:
    """The unknown options by name only: the value after a mistyped ``--pasword`` is a password, and
    argparse's own message would print it."""
    names = [
        argument.split("=", 1)[0] for argument in arguments if argument.startswith("-") and argument != "-"
    ]
    if not names:
        return (
            f"{len(arguments)} unexpected value(s), not shown as one may be a secret; see mt5console --help"
        )
    known = sorted(parser._option_string_actions)
    parts: list[str] = []
    for name in dict.fromkeys(names):
        close = difflib.get_close_matches(name, known, n=1)
        parts.append(f"{name} (did you mean {close[0]}?)" if close else name)
    return f"unrecognized option(s): {', '.join(parts)}; mt5console --help lists the options"


def settings_from_namespace(
    namespace: argparse.Namespace, environ: Mapping[str, str] | None = None, cwd: Path | None = None
) -> Settings:
    """The Settings from options already parsed by a parser built on ``build_parser()``."""
    cwd = Path.cwd() if cwd is None else cwd
    layers = _environment_layers(os.environ if environ is None else environ, cwd)
    _refuse_unknown_names(layers)
    config_file, explicit, config_label = _config_location(namespace, layers, cwd)
    file_values, pips = _read_config_file(config_file, explicit, config_label)

    values: dict[str, Any] = {}
    limits: dict[str, Any] = {}
    origins: dict[str, str] = {}
    for option in _OPTIONS:
        found = _lookup(option, namespace, layers, file_values, cwd, config_file)
        if found is None:
            continue
        raw, label, base = found
        value = _convert(option.parse, raw, label, base, secret=option.secret)
        (limits if option.section == "limits" else values)[option.name] = value
        origins[option.name] = label

    values["broker"] = _resolve_broker(values.get("broker", "auto"), origins.get("broker", "broker"))
    values.setdefault("data_dir", Path(platformdirs.user_data_dir(APP_NAME)))
    if "pusher_auth_endpoint" in values and "pusher_secret" in values:
        raise ConfigError(
            f"{origins['pusher_auth_endpoint']} and {origins['pusher_secret']}: give either the Pusher "
            "auth endpoint or the Pusher secret, not both"
        )
    settings = Settings(
        **values,
        config_path=config_file if config_file.is_file() else None,
        config_dir=config_file.parent,
        pip_overrides=pips,
        limits=Limits(**limits),
    )
    _refuse_a_pusher_that_cannot_work(settings, origins)
    return settings


def _refuse_a_pusher_that_cannot_work(settings: Settings, origins: Mapping[str, str]) -> None:
    """A Pusher command channel asked for that can never work is bad configuration (exit 2), not a
    warning the console trades on after without its remote kill switch. The rules are the Pusher
    source's own; the agent id its channel follows may still come from agent.json or from pairing
    at start, and only what can never work is refused."""
    to_come = _agent_id_to_come(settings)
    try:
        check_pusher_settings(settings, agent_id_to_come=to_come)
    except PusherConfigError as error:
        given = [origins[name] for name in _PUSHER_SETTINGS if name in origins]
        hint = ""
        if not to_come and not settings.pusher_channel:
            hint = "; an agent id also comes from pairing at start (--api-url and --key)"
        raise ConfigError(
            f"{', '.join(given)}: the Pusher command channel cannot work (and with it the remote kill "
            f"switch): {error}{hint}"
        ) from None


_PUSHER_SETTINGS = ("pusher_key", "pusher_channel", "pusher_host", "pusher_auth_endpoint", "pusher_secret")


def _agent_id_to_come(settings: Settings) -> bool:
    """Whether the start will have an agent id: given, saved in agent.json for this platform, or
    asked for by pairing (with --api-url and --key)."""
    if settings.agent_id or not settings.api_url:
        return bool(settings.agent_id)
    try:
        applied = apply_saved_identity(settings)
    except AgentFileError:
        return True  # the start refuses the file itself, naming it (exit 2)
    return applied.agent_id is not None or needs_pairing(applied)


# --- the layers ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _EnvLayer:
    where: str  # "env" or the .env file's path
    values: Mapping[str, str]


def _environment_layers(environ: Mapping[str, str], cwd: Path) -> tuple[_EnvLayer, ...]:
    # Empty values count as unset: a template line "MT5C_LOGIN=" must not erase a lower layer.
    real = {name: value for name, value in environ.items() if value}
    dotenv_path = cwd / DOTENV_FILE_NAME
    if not dotenv_path.is_file():
        return (_EnvLayer("env", real),)
    # No ${VAR} interpolation: it would read os.environ, not ``environ``, and could mangle secrets.
    # Read here, not by dotenv: a BOM (Windows editors) would become part of the first name.
    text = _read_text(dotenv_path, "the .env file")
    from_file = {
        name: value
        for name, value in dotenv_values(stream=io.StringIO(text), interpolate=False).items()
        if value
    }
    for name, value in from_file.items():
        _refuse_decoded_escapes(name, value, dotenv_path)
    return (_EnvLayer("env", real), _EnvLayer(str(dotenv_path), from_file))


def _refuse_decoded_escapes(name: str, value: str, dotenv_path: Path) -> None:
    r"""In double quotes, .env reads backslash escapes: "C:\Program Files\MetaTrader 5\terminal64.exe"
    came out with a TAB for the "	" of "	erminal64.exe", and MT5 was never found, without a word. No
    setting of the console holds a control character, so one in them means an escape was read: refused,
    naming the setting (never its value: it may be a password). Other tools' names are not ours."""
    if not name.startswith((ENV_PREFIX, "WE_V2_")):
        return
    control = next((char for char in value if char < " " or char == "\x7f"), None)
    if control is not None:
        raise ConfigError(
            f"{name} in {dotenv_path}: the value holds a control character ({control!r}): in double quotes "
            "a .env file reads backslash escapes (the \\t of C:\\trading becomes a TAB); write Windows "
            "paths in single quotes, or with / instead of \\"
        )


def _refuse_unknown_names(layers: Sequence[_EnvLayer]) -> None:
    """An MT5C_* name that is no setting is a typo: ignored, MT5C_MAX_LOTS=0.1 would leave the user
    believing in a hard limit that is not there. It is refused, as an unknown config file key is."""
    known = sorted(
        {name for option in (_CONFIG, *_OPTIONS) for name in option.env_names if name.startswith(ENV_PREFIX)}
    )
    for layer in layers:
        for name in layer.values:
            if name.startswith(ENV_PREFIX) and name not in known:
                close = difflib.get_close_matches(name, known, n=1)
                hint = f"did you mean {close[0]}? " if close else ""
                raise ConfigError(
                    f"{layer.where} {name}: no setting has this name; {hint}"
                    f"(mt5console --help lists each setting with its {ENV_PREFIX}* name)"
                )


def _from_environment(option: _Option, layers: Sequence[_EnvLayer]) -> tuple[str, str] | None:
    # Layer first, then name: the real environment beats .env even when it has only an alias.
    for layer in layers:
        for name in option.env_names:
            if name in layer.values:
                return layer.values[name], f"{layer.where} {name}"
    return None


def _lookup(
    option: _Option,
    namespace: argparse.Namespace,
    layers: Sequence[_EnvLayer],
    file_values: Mapping[str, object],
    cwd: Path,
    config_file: Path,
) -> tuple[object, str, Path] | None:
    given = getattr(namespace, option.name, None)
    if given is not None:
        return given, option.cli_flags[0], cwd
    from_env = _from_environment(option, layers)
    if from_env is not None:
        return from_env[0], from_env[1], cwd
    if option.file_key in file_values:
        return file_values[option.file_key], f"{config_file} {option.file_key}", config_file.parent
    return None


def _convert(parse: Callable[[object, Path], T], raw: object, label: str, base: Path, *, secret: bool) -> T:
    try:
        return parse(raw, base)
    except _Invalid as invalid:
        shown = "the value" if secret else repr(raw)
        raise ConfigError(f"{label}: {shown} {invalid}") from None


def _config_location(
    namespace: argparse.Namespace, layers: Sequence[_EnvLayer], cwd: Path
) -> tuple[Path, bool, str]:
    """The config file, whether it was asked for explicitly, and where that request came from."""
    given = getattr(namespace, _CONFIG.name, None)
    found = (given, _CONFIG.cli_flags[0]) if given is not None else _from_environment(_CONFIG, layers)
    if found is None:
        default = Path(platformdirs.user_config_dir(APP_NAME)) / CONFIG_FILE_NAME
        return default, False, str(default)
    raw, label = found
    path = _convert(_config_path, raw, label, cwd, secret=False)
    if not path.is_file():
        raise ConfigError(f"{label}: {raw!r} is not an existing file ({path})")
    return path, True, label


def _read_config_file(path: Path, explicit: bool, label: str) -> tuple[dict[str, object], dict[str, float]]:
    """The file's settings keyed like ``_Option.file_key``, and its [pips] overrides."""
    if not path.is_file():
        return {}, {}
    try:
        document = tomllib.loads(_read_text(path, "the config file"))
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"{path}: cannot read the config file: {error}") from None
    values: dict[str, object] = {}
    pips: dict[str, float] = {}
    for key, value in document.items():
        if key == "limits":
            for limit, raw in _table(path, key, value):
                if limit not in _LIMIT_KEYS:
                    _unknown(path, f"[limits] {limit}", _LIMIT_KEYS)
                values[_LIMIT_KEYS[limit].file_key] = raw
        elif key == "pips":
            for symbol, raw in _table(path, key, value):
                where = f"{path} [pips] {symbol}"
                name = _convert(
                    lambda raw, _base: normalize_symbol(str(raw)), symbol, where, path, secret=False
                )
                pips[name] = _convert(_positive(), raw, where, path.parent, secret=False)
        elif key in _FILE_KEYS:
            values[key] = value
        elif key in _LIMIT_KEYS:
            raise ConfigError(f"{path}: {key} belongs in the [limits] table")
        else:
            _unknown(path, key, _FILE_KEYS)
    return values, pips


def _read_text(path: Path, what: str) -> str:
    """A settings file's text: UTF-8, with or without the BOM that PowerShell 5's
    ``Set-Content -Encoding UTF8`` and Notepad write. ConfigError naming the file otherwise."""
    try:
        data = path.read_bytes()
    except OSError as error:
        raise ConfigError(f"{path}: cannot read {what}: {error.strerror or error}") from None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line = data.count(b"\n", 0, error.start) + 1
        raise ConfigError(
            f"{path}: {what} is not UTF-8 text (byte 0x{data[error.start]:02x} on line {line}); "
            "save it as UTF-8"
        ) from None


def _table(path: Path, key: str, value: object) -> Iterator[tuple[str, object]]:
    if not isinstance(value, dict):
        raise ConfigError(f"{path}: {key} must be a table ([{key}])")
    yield from value.items()


def _unknown(path: Path, key: str, known: Mapping[str, object]) -> NoReturn:
    raise ConfigError(f"{path}: unknown key {key!r}; known keys: {', '.join(sorted(known))}")


def _importable(module: str) -> bool:
    try:
        importlib.import_module(module)
    except ImportError:
        return False
    return True


def _resolve_broker(kind: str, label: str) -> str:
    if kind == "auto":
        return "mt5" if _importable("MetaTrader5") else "sim"
    if kind == "mt5" and not _importable("MetaTrader5"):
        raise ConfigError(
            f"{label}: 'mt5' needs the MetaTrader5 package, which exists for Windows only "
            "(pip install MetaTrader5); elsewhere use mt5linux (MT5 under Wine) or sim"
        )
    if kind == "mt5linux" and not _importable("mt5linux"):
        raise ConfigError(f"{label}: 'mt5linux' needs the mt5linux package: pip install 'mt5console[bridge]'")
    return kind
