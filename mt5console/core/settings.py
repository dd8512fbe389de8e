"""The typed settings the runtime is built from; ``mt5console.config`` fills them in.

Precedence (applied by config.py): command line > environment (MT5C_*, WE_V2_* aliases, .env) >
config.toml > the defaults below.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

DEFAULT_SYMBOLS: tuple[str, ...] = ("EURUSD", "GBPUSD", "XAUUSD", "USDJPY", "AUDUSD", "USDCAD")
BROKER_KINDS: tuple[str, ...] = ("auto", "sim", "mt5", "mt5linux")


@dataclass(frozen=True, slots=True)
class Limits:
    """Local hard limits no remote command, job or strategy can exceed (None = no limit)."""

    max_lot: float | None = None
    max_positions: int | None = None
    max_daily_loss_pct: float | None = None
    max_drawdown_pct: float | None = None


@dataclass(frozen=True, slots=True)
class Settings:
    # terminal
    broker: str = "auto"  # resolved by config.py to sim | mt5 | mt5linux
    mt5_path: str | None = None
    login: int | None = None
    password: str | None = field(default=None, repr=False)
    server: str | None = None
    mt5_host: str = "localhost"
    mt5_port: int = 18812
    reconnect_interval: float = 10.0  # seconds between initialize() attempts while the terminal is lost
    connect_attempts: int = 3  # attempts at start before exiting with code 3 (0 = keep trying)
    # Hours the trade server's clock is ahead of UTC, or "auto": learned from live ticks
    # (broker/server_clock.py). The simulator's is its own --sim-server-utc-offset.
    server_utc_offset: float | str = "auto"

    # files
    config_path: Path | None = None
    config_dir: Path = Path(".")
    data_dir: Path = Path(".")
    strategies: Path | None = None

    # market data
    symbols: tuple[str, ...] = DEFAULT_SYMBOLS
    poll_interval: float = 1.0  # seconds between market-data polls
    pip_overrides: dict[str, float] = field(default_factory=dict)

    # platform / agent
    api_url: str | None = None
    pairing_key: str | None = field(default=None, repr=False)
    agent_id: str | None = None
    heartbeat_interval: float = 30.0  # seconds between heartbeats (issue 6)
    prices_interval: float = 1.0  # seconds between price batches sent to the platform
    jobs_interval: float = 2.0  # seconds between polls for the next platform job

    # platform jobs: MetaEditor compile and EA control
    metaeditor_path: str | None = None  # default: metaeditor64.exe next to the terminal
    compile_timeout: float = 120.0  # seconds MetaEditor may take before it is stopped
    ea_answer_timeout: float = 30.0  # seconds to wait for the MT5ConsoleController EA's answer
    artifact_max_bytes: int = 2_000_000  # largest EA source a compile job may bring

    # pusher
    pusher_key: str | None = None
    pusher_cluster: str | None = None
    pusher_channel: str | None = None
    pusher_host: str | None = None
    pusher_port: int | None = None
    pusher_insecure: bool = False
    pusher_auth_endpoint: str | None = None
    pusher_secret: str | None = field(default=None, repr=False)

    # simulator
    sim_seed: int = 1
    sim_data: Path | None = None
    sim_symbol: str | None = None  # which symbol --sim-data holds; default: read from its file name
    sim_state: Path | None = None  # default: <data_dir>/sim_state.db
    sim_server_utc_offset: float = 0.0  # hours its trade server's clock is ahead of UTC

    # front end
    theme: str = "mt5-dark"
    verbose: bool = False
    no_ui: bool = False

    limits: Limits = field(default_factory=Limits)

    @property
    def database_path(self) -> Path:
        return self.data_dir / "mt5console.db"

    @property
    def log_dir(self) -> Path:
        return self.data_dir / "logs"

    @property
    def sim_state_path(self) -> Path:
        return self.sim_state if self.sim_state is not None else self.data_dir / "sim_state.db"

    def secrets(self) -> tuple[str, ...]:
        """Values that must never appear in logs, on screen or in reports."""
        return tuple(s for s in (self.password, self.pairing_key, self.pusher_secret) if s)
