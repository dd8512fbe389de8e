"""Choosing the MT5-like module for the configured broker kind.

Each factory runs on the adapter's terminal thread (see Broker), so even the import of the real
MetaTrader5 package and the mt5linux connection happen there.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

from mt5console.core.settings import Settings


def initialize_kwargs(settings: Settings) -> dict[str, Any]:
    """Keyword arguments for ``initialize()``: only what the user gave (the terminal fills the rest)."""
    kwargs: dict[str, Any] = {}
    if settings.broker in ("mt5", "mt5linux"):
        if settings.mt5_path:
            kwargs["path"] = settings.mt5_path
        if settings.login is not None:
            kwargs["login"] = settings.login
        if settings.password:
            kwargs["password"] = settings.password
        if settings.server:
            kwargs["server"] = settings.server
    return kwargs


def module_factory(settings: Settings) -> Callable[[], Any]:
    kind = settings.broker
    if kind == "sim":

        def open_simulator() -> Any:
            from mt5console.core.broker.sim import SimTerminal

            settings.data_dir.mkdir(parents=True, exist_ok=True)
            return SimTerminal(
                seed=settings.sim_seed,
                data=settings.sim_data,
                symbol=settings.sim_symbol if settings.sim_data is not None else None,
                state_path=settings.sim_state_path,
                server_utc_offset=settings.sim_server_utc_offset,
            )

        return open_simulator
    if kind == "mt5":
        return lambda: importlib.import_module("MetaTrader5")
    if kind == "mt5linux":

        def open_bridge() -> Any:
            bridge = importlib.import_module("mt5linux")
            where = f"{settings.mt5_host}:{settings.mt5_port}"
            try:
                return bridge.MetaTrader5(host=settings.mt5_host, port=settings.mt5_port)
            except OSError as error:
                # "[Errno 111] Connection refused" alone does not say which bridge was tried.
                raise ConnectionError(
                    f"mt5linux bridge at {where} (--mt5-host, --mt5-port): {error.strerror or error}"
                ) from error

        return open_bridge
    raise ValueError(f"unknown broker kind {kind!r}")
