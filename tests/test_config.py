"""The settings loader: each layer, their precedence, the aliases, .env, config.toml, bad values."""

from __future__ import annotations

import argparse
import sys
import types
from pathlib import Path

import pytest

from mt5console.config import ConfigError, build_parser, load_settings, settings_from_namespace
from mt5console.core.settings import DEFAULT_SYMBOLS, Limits


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Point the user dirs (platformdirs) and ~ into tmp_path, so no real config file is read."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / ".config"))
    monkeypatch.setenv("XDG_DATA_HOME", str(home / ".local" / "share"))
    return home


@pytest.fixture
def cwd(tmp_path: Path) -> Path:
    work = tmp_path / "work"
    work.mkdir()
    return work


def write(path: Path, content: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(content, encoding="utf-8")
    return path


def default_config(home: Path) -> Path:
    return home / ".config" / "mt5console" / "config.toml"


def error_of(argv: list[str], environ: dict[str, str], cwd: Path) -> str:
    with pytest.raises(ConfigError) as caught:
        load_settings(argv, environ, cwd)
    return str(caught.value)


def test_defaults(home: Path, cwd: Path) -> None:
    settings = load_settings([], {}, cwd)
    assert settings.broker == "sim"  # no MetaTrader5 package on this machine: auto -> sim
    assert settings.data_dir == home / ".local" / "share" / "mt5console"
    assert settings.config_dir == home / ".config" / "mt5console"
    assert settings.config_path is None  # the default file is missing, which is fine
    assert settings.symbols == DEFAULT_SYMBOLS
    assert settings.limits == Limits()
    assert (settings.sim_seed, settings.connect_attempts, settings.verbose, settings.no_ui) == (
        1,
        3,
        False,
        False,
    )


def test_every_field_from_the_command_line(home: Path, cwd: Path) -> None:
    strategies = write(cwd / "strategies" / "ema.json", "{}")
    bars = write(cwd / "bars.csv", "time,open,high,low,close\n")
    argv = [
        "--broker", "sim", "--mt5-path", "~/mt5/terminal64.exe", "--login", "5012345", "--password", "pw",
        "--server", "Broker-Demo", "--mt5-host", "wine-box", "--mt5-port", "18813",
        "--reconnect-interval", "2.5", "--connect-attempts", "0", "--data-dir", "data",
        "--strategies", "strategies", "--symbols", "eurusd,XAUUSD.pro", "--poll-interval", "0.5",
        "--api-url", "https://platform.example/api/", "--key", "pk", "--agent-id", "agent-9",
        "--pusher-key", "app-key", "--pusher-cluster", "eu", "--pusher-channel", "private-executor-9",
        "--pusher-host", "127.0.0.1", "--pusher-port", "6001", "--pusher-insecure",
        "--pusher-secret", "ps", "--sim-seed", "42", "--sim-data", "bars.csv", "--sim-state", "~/sim.db",
        "--theme", "mt5-light", "-v", "--no-ui", "--max-lot", "0.5", "--max-positions", "4",
        "--max-daily-loss-pct", "3", "--max-drawdown-pct", "12.5",
    ]  # fmt: skip
    s = load_settings(argv, {}, cwd)
    assert s.mt5_path == str(home / "mt5" / "terminal64.exe")
    assert (s.login, s.password, s.server, s.mt5_host, s.mt5_port) == (
        5012345,
        "pw",
        "Broker-Demo",
        "wine-box",
        18813,
    )
    assert (s.reconnect_interval, s.connect_attempts, s.poll_interval) == (2.5, 0, 0.5)
    assert (s.data_dir, s.strategies, s.sim_data) == (cwd / "data", strategies.parent, bars)
    assert s.database_path == cwd / "data" / "mt5console.db"
    assert s.symbols == ("EURUSD", "XAUUSD.pro")
    assert (s.api_url, s.pairing_key, s.agent_id) == ("https://platform.example/api", "pk", "agent-9")
    assert (s.pusher_key, s.pusher_cluster, s.pusher_channel) == ("app-key", "eu", "private-executor-9")
    assert (s.pusher_host, s.pusher_port, s.pusher_insecure, s.pusher_secret) == (
        "127.0.0.1",
        6001,
        True,
        "ps",
    )
    assert (s.sim_seed, s.sim_state, s.theme, s.verbose, s.no_ui) == (
        42,
        home / "sim.db",
        "mt5-light",
        True,
        True,
    )
    assert s.limits == Limits(max_lot=0.5, max_positions=4, max_daily_loss_pct=3.0, max_drawdown_pct=12.5)
    assert s.secrets() == ("pw", "pk", "ps")


def test_precedence_cli_over_env_over_dotenv_over_config_file_over_defaults(home: Path, cwd: Path) -> None:
    write(default_config(home), 'theme = "from-file"\nsim_seed = 1\n[limits]\nmax_lot = 1.0\n')
    write(cwd / ".env", "MT5C_THEME=from-dotenv\nMT5C_SIM_SEED=2\n")
    environ = {"MT5C_THEME": "from-env"}

    s = load_settings(["--theme", "from-cli"], environ, cwd)
    assert (s.theme, s.sim_seed, s.limits.max_lot, s.config_path) == (
        "from-cli",
        2,
        1.0,
        default_config(home),
    )
    assert load_settings([], environ, cwd).theme == "from-env"
    assert load_settings([], {}, cwd).theme == "from-dotenv"
    (cwd / ".env").unlink()
    assert load_settings([], {}, cwd).theme == "from-file"
    default_config(home).unlink()
    assert load_settings([], {}, cwd).theme == "mt5-dark"


def test_aliases_of_the_older_executor(home: Path, cwd: Path) -> None:
    environ = {
        "WE_V2_PUSHER_KEY": "k",
        "WE_V2_PUSHER_CLUSTER": "mt1",
        "WE_V2_PUSHER_CHANNEL": "private-executor-7",
        "WE_V2_EXECUTOR_ID": "7",
        "WE_V2_PLATFORM_API_URL": "http://localhost:8000",
        "WE_V2_PLATFORM_API_KEY": "secret-key",
        "WE_V2_MT5_PATH": r"C:\MT5\terminal64.exe",
        # A private channel needs its auth (no WE_V2_* name for it): else the start is refused.
        "MT5C_PUSHER_AUTH_ENDPOINT": "http://localhost:8000/pusher/auth",
    }
    s = load_settings([], environ, cwd)
    assert (s.pusher_key, s.pusher_cluster, s.pusher_channel) == ("k", "mt1", "private-executor-7")
    assert (s.agent_id, s.api_url, s.pairing_key, s.mt5_path) == (
        "7",
        "http://localhost:8000",
        "secret-key",
        r"C:\MT5\terminal64.exe",
    )
    # The MT5C_* name wins over its alias.
    assert load_settings([], {**environ, "MT5C_AGENT_ID": "8"}, cwd).agent_id == "8"


def test_dotenv_layer(home: Path, cwd: Path) -> None:
    write(
        cwd / ".env",
        "MT5C_SYMBOLS=gbpusd\nMT5C_LOGIN=777\nMT5C_PASSWORD=pa${HOME}ss\nWE_V2_EXECUTOR_ID=from-dotenv\n",
    )
    s = load_settings([], {"MT5C_LOGIN": "888", "MT5C_SYMBOLS": ""}, cwd)
    assert s.login == 888  # the real environment wins over .env
    assert s.symbols == ("GBPUSD",)  # an empty real value does not erase the .env one
    assert s.password == "pa${HOME}ss"  # no interpolation: secrets are taken as written
    # Layer before name: an alias in the real environment beats an MT5C_* name in .env.
    write(cwd / ".env", "MT5C_AGENT_ID=dotenv-agent\n")
    assert load_settings([], {"WE_V2_EXECUTOR_ID": "env-agent"}, cwd).agent_id == "env-agent"
    assert load_settings([], {}, cwd).agent_id == "dotenv-agent"


def test_config_file_with_limits_pips_and_relative_paths(home: Path, cwd: Path, tmp_path: Path) -> None:
    config = write(
        tmp_path / "etc" / "console.toml",
        """
        broker = "sim"
        symbols = ["eurusd", "XAUUSD"]
        data_dir = "state"
        pusher_insecure = true
        api_url = "https://platform.example"
        [limits]
        max_lot = 2
        max_positions = 3
        max_daily_loss_pct = 4.5
        max_drawdown_pct = 10
        [pips]
        XAUUSD = 0.1
        us30 = 1
        """.replace("        ", ""),
    )
    s = load_settings(["--config", str(config)], {}, cwd)
    assert (s.config_path, s.config_dir) == (config, config.parent)
    assert s.symbols == ("EURUSD", "XAUUSD")
    assert s.data_dir == config.parent / "state"  # relative to the config file's folder
    assert (s.pusher_insecure, s.api_url) == (True, "https://platform.example")
    assert s.limits == Limits(max_lot=2.0, max_positions=3, max_daily_loss_pct=4.5, max_drawdown_pct=10.0)
    assert s.pip_overrides == {"XAUUSD": 0.1, "US30": 1.0}
    # The same file named by the environment.
    assert load_settings([], {"MT5C_CONFIG": str(config)}, cwd).limits.max_positions == 3


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ('theme = "x"\nthem = "y"\n', "unknown key 'them'"),
        ("[limits]\nmax_lots = 1\n", "unknown key '[limits] max_lots'"),
        ("max_lot = 1\n", "max_lot belongs in the [limits] table"),
        ('config = "other.toml"\n', "unknown key 'config'"),
        ("[limits]\nmax_lot = -1\n", "[limits] max_lot: -1 is not a positive number"),
        ("[limits]\nmax_positions = 1.5\n", "[limits] max_positions: 1.5 is not a whole number >= 1"),
        ("[pips]\nXAUUSD = 0\n", "[pips] XAUUSD: 0 is not a positive number"),
        ('sim_seed = "one"\n', "sim_seed: 'one' is not a whole number >= 0"),
        ('verbose = "yes please"\n', "verbose: 'yes please' is not one of true"),
        ("symbols = 3\n", "symbols: 3 is not a comma-separated list"),
        ("limits = 3\n", "limits must be a table"),
        ("theme = \n", "cannot read the config file"),
    ],
)
def test_config_file_errors_name_the_file_and_the_key(
    home: Path, cwd: Path, content: str, expected: str
) -> None:
    config = write(default_config(home), content)
    message = error_of([], {}, cwd)
    assert str(config) in message and expected in message


def test_missing_config_file_is_an_error_only_when_asked_for(home: Path, cwd: Path) -> None:
    assert "--config: 'nowhere.toml' is not an existing file" in error_of(
        ["--config", "nowhere.toml"], {}, cwd
    )
    assert "env MT5C_CONFIG: '/no/such.toml'" in error_of([], {"MT5C_CONFIG": "/no/such.toml"}, cwd)
    assert load_settings([], {}, cwd).config_path is None


@pytest.mark.parametrize(
    ("argv", "environ", "expected"),
    [
        (["--broker", "foo"], {}, "--broker: 'foo' is not one of auto, sim, mt5, mt5linux"),
        ([], {"MT5C_MAX_LOT": "abc"}, "env MT5C_MAX_LOT: 'abc' is not a number"),
        ([], {"MT5C_MAX_LOT": "0"}, "env MT5C_MAX_LOT: '0' is not a positive number"),
        ([], {"MT5C_MAX_LOT": "nan"}, "env MT5C_MAX_LOT: 'nan' is not a positive number"),
        (["--max-drawdown-pct", "150"], {}, "--max-drawdown-pct: '150' is more than 100"),
        (["--max-positions", "0"], {}, "--max-positions: '0' is not a whole number >= 1"),
        ([], {"MT5C_LOGIN": "12ab"}, "env MT5C_LOGIN: '12ab' is not a whole number >= 1"),
        (["--mt5-port", "70000"], {}, "--mt5-port: '70000' is not a whole number from 1 to 65535"),
        ([], {"MT5C_PUSHER_PORT": "-1"}, "env MT5C_PUSHER_PORT: '-1' is not a whole number from 1 to 65535"),
        (["--connect-attempts", "-1"], {}, "--connect-attempts: '-1' is not a whole number >= 0"),
        (["--poll-interval", "0"], {}, "--poll-interval: '0' is not a positive number"),
        ([], {"MT5C_RECONNECT_INTERVAL": "soon"}, "env MT5C_RECONNECT_INTERVAL: 'soon' is not a number"),
        ([], {"MT5C_VERBOSE": "maybe"}, "env MT5C_VERBOSE: 'maybe' is not one of true, 1, yes, on, false"),
        ([], {"MT5C_PUSHER_INSECURE": "2"}, "env MT5C_PUSHER_INSECURE: '2' is not one of"),
        (["--symbols", "EURUSD,,GBPUSD"], {}, "--symbols: 'EURUSD,,GBPUSD' has an empty entry"),
        (["--symbols", "EUR USD"], {}, "--symbols: 'EUR USD' has a bad symbol name"),
        ([], {"MT5C_API_URL": "platform.example"}, "env MT5C_API_URL: 'platform.example' is not an http"),
        (["--pusher-auth-endpoint", "ws://x"], {}, "--pusher-auth-endpoint: 'ws://x' is not an http"),
        (["--strategies", "missing.json"], {}, "--strategies: 'missing.json' does not exist"),
        ([], {"MT5C_SIM_DATA": "bars.csv"}, "env MT5C_SIM_DATA: 'bars.csv' does not exist"),
        (["--theme", "  "], {}, "--theme: '  ' is empty"),
        (["--no-such-option"], {}, "unrecognized option(s): --no-such-option"),
        (
            ["--data", "x.csv"],
            {},
            "unrecognized option(s): --data (did you mean --sim-data?)",
        ),  # never taken for --data-dir
        (["--sim-seed"], {}, "--sim-seed: expected one argument"),
    ],
)
def test_bad_values_name_the_setting_and_its_source(
    home: Path, cwd: Path, argv: list[str], environ: dict[str, str], expected: str
) -> None:
    assert expected in error_of(argv, environ, cwd)


def test_a_misspelt_environment_name_is_refused_with_the_name_it_resembles(home: Path, cwd: Path) -> None:
    message = error_of([], {"MT5C_MAX_LOTS": "0.1"}, cwd)
    assert message.startswith("env MT5C_MAX_LOTS: no setting has this name; did you mean MT5C_MAX_LOT?")
    dotenv = write(cwd / ".env", "MT5C_BROKR=sim\n")
    expected = f"{dotenv} MT5C_BROKR: no setting has this name; did you mean MT5C_BROKER?"
    assert expected in error_of([], {}, cwd)
    assert "did you mean" not in error_of([], {"MT5C_ZZZZZZZZZZ": "1"}, cwd)
    # Other programs' variables, and an empty MT5C_ line of a template, are none of its business.
    (cwd / ".env").unlink()
    settings = load_settings([], {"MT5_PATH": "x", "WE_V2_UNKNOWN": "y", "MT5C_NOTHING": ""}, cwd)
    assert settings.broker == "sim"


def test_dotenv_errors_name_the_file(home: Path, cwd: Path) -> None:
    dotenv = write(cwd / ".env", "MT5C_MAX_POSITIONS=many\n")
    assert f"{dotenv} MT5C_MAX_POSITIONS: 'many' is not a whole number" in error_of([], {}, cwd)


def test_a_windows_path_in_double_quotes_in_dotenv_is_refused_not_mangled(home: Path, cwd: Path) -> None:
    """python-dotenv reads escapes in double quotes: "\\terminal64.exe" held a TAB, and MT5 was never
    found; "C:\\trading" did not exist. Refused, naming the setting; single quotes work."""
    write(cwd / ".env", 'MT5C_MT5_PATH="C:\\Program Files\\MetaTrader 5\\terminal64.exe"\n')
    message = error_of([], {}, cwd)
    assert "MT5C_MT5_PATH in" in message and "control character ('\\t')" in message
    assert "single quotes" in message and "Program Files" not in message  # the value is never quoted
    write(cwd / ".env", "MT5C_MT5_PATH='C:\\Program Files\\MetaTrader 5\\terminal64.exe'\nOTHER=\"a\\tb\"\n")
    assert load_settings([], {}, cwd).mt5_path == "C:\\Program Files\\MetaTrader 5\\terminal64.exe"


def test_secrets_never_appear_in_error_messages(home: Path, cwd: Path) -> None:
    write(default_config(home), "password = 31337\npairing_key = ['hunter2']\n")
    message = error_of([], {}, cwd)
    assert "password: the value is not a string" in message and "31337" not in message
    message = error_of([], {"MT5C_PASSWORD": "ok-password"}, cwd)
    assert "pairing_key: the value is not a string" in message and "hunter2" not in message
    default_config(home).unlink()
    assert "--key: the value is empty" in error_of(["--key", ""], {}, cwd)
    message = error_of(
        ["--pusher-secret", "s3cr3t-value", "--pusher-auth-endpoint", "https://platform.example/auth"],
        {},
        cwd,
    )
    assert (
        "--pusher-auth-endpoint and --pusher-secret: give either" in message and "s3cr3t-value" not in message
    )
    pusher = ["--pusher-key", "pk", "--pusher-channel", "private-c", "--pusher-secret", "s3c"]
    settings = load_settings(["--password", "p4ss", "--key", "k3y", *pusher], {}, cwd)
    assert not {"p4ss", "k3y", "s3c"} & set(repr(settings).replace("'", " ").split())


def test_broker_resolution(home: Path, cwd: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert load_settings(["--broker", "auto"], {}, cwd).broker == "sim"
    assert load_settings([], {"MT5C_BROKER": "SIM"}, cwd).broker == "sim"
    message = error_of([], {"MT5C_BROKER": "mt5linux"}, cwd)
    assert (
        message == "env MT5C_BROKER: 'mt5linux' needs the mt5linux package: pip install 'mt5console[bridge]'"
    )
    assert "--broker: 'mt5' needs the MetaTrader5 package" in error_of(["--broker", "mt5"], {}, cwd)
    # Where MetaTrader5 imports (Windows), auto picks it.
    monkeypatch.setitem(sys.modules, "MetaTrader5", types.ModuleType("MetaTrader5"))
    assert load_settings([], {}, cwd).broker == "mt5"


def test_paths_and_symbols_are_normalised(home: Path, cwd: Path) -> None:
    s = load_settings(
        ["--data-dir", "~/mt5data", "--symbols", " eurusd.m ,EURUSD.m,XAUUSDm, gbpusd"], {}, cwd
    )
    assert s.data_dir == home / "mt5data"
    assert s.symbols == ("EURUSD.m", "XAUUSDM", "GBPUSD")


def test_runtime_options_reused_as_a_parent_parser(home: Path, cwd: Path) -> None:
    parser = argparse.ArgumentParser(prog="mt5console", parents=[build_parser()], allow_abbrev=False)
    commands = parser.add_subparsers(dest="command")
    replay = commands.add_parser("replay")
    replay.add_argument("strategy")
    replay.add_argument("--data", required=True)
    namespace = parser.parse_args(
        ["--max-lot", "0.2", "--data-dir", "d", "replay", "s.json", "--data", "b.csv"]
    )
    settings = settings_from_namespace(namespace, {"MT5C_MAX_LOT": "9"}, cwd)
    assert (settings.limits.max_lot, settings.data_dir) == (0.2, cwd / "d")
    assert (namespace.command, namespace.data) == ("replay", "b.csv")


# --- review fixes: mistyped secret flags, Pusher setups that cannot work, file encodings ----------


def test_a_mistyped_secret_flag_is_named_but_its_value_never_shown(
    home: Path, cwd: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from mt5console.cli import main

    for argv in (["--pasword", "PW_SECRET_xyz"], ["--pasword=PW_SECRET_xyz"], ["--no-ui", "PW_SECRET_xyz"]):
        message = error_of(argv, {}, cwd)
        assert "PW_SECRET_xyz" not in message
    assert "unrecognized option(s): --pasword (did you mean --password?)" in error_of(
        ["--pasword", "PW_SECRET_xyz"], {}, cwd
    )
    assert main(["--pusher-secrte", "PS_SECRET_abc", "--no-ui"]) == 2
    printed = capsys.readouterr()
    assert "--pusher-secrte (did you mean --pusher-secret?)" in printed.err
    assert "PS_SECRET_abc" not in printed.err + printed.out


def test_a_pusher_channel_that_can_never_work_is_refused_naming_what_is_missing(
    home: Path, cwd: Path
) -> None:
    platform = ["--api-url", "http://127.0.0.1:9"]
    # A private channel (the agent's) with neither the auth endpoint nor the secret to sign it.
    message = error_of(
        ["--pusher-key", "pk", "--pusher-cluster", "mt1", "--agent-id", "A1", *platform], {}, cwd
    )
    assert message.startswith("--pusher-key: the Pusher command channel cannot work")
    assert "'private-executor-A1' is private: give --pusher-auth-endpoint" in message
    # No channel, no agent id, and no way to get one (no key to pair with, nothing saved).
    message = error_of(["--pusher-key", "pk", "--pusher-secret", "ps-secret", *platform], {}, cwd)
    assert "--pusher-key, --pusher-secret: the Pusher command channel cannot work" in message
    assert "no channel" in message and "ps-secret" not in message
    message = error_of([], {"MT5C_PUSHER_SECRET": "ps-secret"}, cwd)
    assert message.startswith("env MT5C_PUSHER_SECRET: ") and "no Pusher app key (--pusher-key)" in message


def test_a_pusher_channel_whose_agent_id_comes_later_is_accepted(home: Path, cwd: Path) -> None:
    from mt5console.core.agent.pairing import AgentIdentity, save_identity

    url = "http://127.0.0.1:9"
    pusher = ["--pusher-key", "pk", "--pusher-secret", "ps-secret"]
    # The id comes from pairing at start (--api-url and --key): the channel will follow it.
    assert load_settings([*pusher, "--api-url", url, "--key", "k3y-given"], {}, cwd).agent_id is None
    # ... or from agent.json, saved by an earlier pairing with this platform.
    config = write(cwd / "cfg" / "config.toml", "")
    save_identity(config.parent / "agent.json", AgentIdentity("saved-7", "saved-key", url))
    assert load_settings([*pusher, "--api-url", url, "--config", str(config)], {}, cwd).pusher_key == "pk"
    # A pairing saved with another platform brings no id here (its key is not sent there).
    message = error_of([*pusher, "--api-url", "http://127.0.0.1:10", "--config", str(config)], {}, cwd)
    assert "no channel" in message and "pairing at start (--api-url and --key)" in message
    # A public channel needs no id and no auth.
    assert load_settings(["--pusher-key", "pk", "--pusher-channel", "desk"], {}, cwd).pusher_channel == "desk"


def test_settings_files_that_are_not_utf8_are_refused_naming_the_file(
    home: Path, cwd: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from mt5console.cli import main

    config = cwd / "config.toml"
    config.write_bytes(b'theme = "\xff\xfe"\n')
    message = error_of(["--config", str(config)], {}, cwd)
    assert message == f"{config}: the config file is not UTF-8 text (byte 0xff on line 1); save it as UTF-8"
    assert main(["--config", str(config), "--no-ui"]) == 2  # not a traceback with exit code 1
    assert str(config) in capsys.readouterr().err
    config.unlink()
    (cwd / ".env").write_bytes(b"MT5C_THEME=dark\nMT5C_SYMBOLS=EUR\xffUSD\n")
    assert error_of([], {}, cwd) == (
        f"{cwd / '.env'}: the .env file is not UTF-8 text (byte 0xff on line 2); save it as UTF-8"
    )


def test_settings_files_with_a_utf8_bom_are_read(home: Path, cwd: Path) -> None:
    bom = "\ufeff"
    config = write(cwd / "config.toml", bom + 'theme = "from-bom-file"\n')
    assert load_settings(["--config", str(config)], {}, cwd).theme == "from-bom-file"
    write(cwd / ".env", bom + "MT5C_SYMBOLS=EURUSD\n")
    assert load_settings([], {}, cwd).symbols == ("EURUSD",)
    # The first name of a .env with a BOM is checked like any other (a typo is not silently ignored).
    write(cwd / ".env", bom + "MT5C_MAX_LOTS=0.01\n")
    assert "MT5C_MAX_LOTS: no setting has this name; did you mean MT5C_MAX_LOT?" in error_of([], {}, cwd)
