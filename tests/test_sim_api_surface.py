"""The simulator offers the real MetaTrader5 module's surface: every constant, named tuple and function
of shared/reference/mt5_api.txt, with the same values, field order, calling conventions and errors."""

from __future__ import annotations

import inspect
import re
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from mt5console.core.broker.sim import SimTerminal
from mt5console.core.broker.sim import constants as sim_constants
from mt5console.core.broker.sim import records as sim_records
from tests.helpers import WEDNESDAY, Clock

REFERENCE = Path(__file__).resolve().parents[1].parent / "shared" / "reference" / "mt5_api.txt"


def _reference() -> str:
    if not REFERENCE.exists():
        pytest.fail(f"the MetaTrader5 API reference is missing: {REFERENCE}")
    return REFERENCE.read_text(encoding="utf-8")


def _section(text: str, title: str) -> str:
    start = text.index(f"## {title}")
    end = text.find("\n## ", start + 1)
    return text[start : end if end != -1 else None]


def reference_constants() -> dict[str, int]:
    section = _section(_reference(), "Constants")
    return {name: int(value) for name, value in re.findall(r"^([A-Z][A-Z0-9_]+) = (-?\d+)$", section, re.M)}


def reference_records() -> dict[str, list[str]]:
    section = _section(_reference(), "Named tuples")
    found = re.findall(r"^([A-Z][A-Za-z]+)\n  ([a-z_0-9, ]+)$", section, re.M)
    return {name: [field.strip() for field in fields.split(",")] for name, fields in found}


def reference_functions() -> dict[str, list[str]]:
    """Function name -> its leading positional parameters (those before any optional [..] part)."""
    section = _section(_reference(), "Functions")
    functions: dict[str, list[str]] = {}
    for name, params in re.findall(r"^([a-z_]+)\((.*)\)$", section, re.M):
        leading = params.split("[")[0]
        functions[name] = [p.strip() for p in leading.split(",") if p.strip() and "=" not in p]
    return functions


@pytest.fixture
def mt5() -> SimTerminal:
    terminal = SimTerminal(seed=1, clock=Clock(WEDNESDAY))
    assert terminal.initialize()
    return terminal


def test_the_reference_is_complete_enough_to_test_against() -> None:
    assert len(reference_constants()) > 200
    assert set(reference_records()) >= {"AccountInfo", "SymbolInfo", "TradeRequest", "OrderSendResult"}
    assert len(reference_functions()) == 32


def test_every_constant_has_its_real_value_on_the_terminal_and_in_the_constants_module() -> None:
    constants = reference_constants()
    for name, value in constants.items():
        assert getattr(SimTerminal, name) == value, name
        assert getattr(sim_constants, name) == value, name
    assert constants == sim_constants.CONSTANTS


def test_every_named_tuple_has_the_real_fields_in_the_real_order() -> None:
    for name, fields in reference_records().items():
        record = getattr(SimTerminal, name)
        assert list(record._fields) == fields, name
        assert getattr(sim_records, name) is record
        sample = record(*range(len(fields)))
        assert list(sample._asdict()) == fields


def test_every_function_exists_with_the_real_leading_positional_parameters() -> None:
    terminal = SimTerminal(seed=1, clock=Clock(WEDNESDAY))
    for name, leading in reference_functions().items():
        function = getattr(terminal, name, None)
        assert callable(function), name
        parameters = list(inspect.signature(function).parameters.values())
        positional = [p.name for p in parameters if p.kind is inspect.Parameter.POSITIONAL_OR_KEYWORD]
        assert positional[: len(leading)] == leading, name


def test_rates_and_ticks_are_structured_arrays_with_the_real_dtypes(mt5: SimTerminal) -> None:
    rates = mt5.copy_rates_from_pos("EURUSD", mt5.TIMEFRAME_M1, 0, 10)
    assert rates is not None
    assert rates.dtype == np.dtype(
        [
            ("time", "<i8"),
            ("open", "<f8"),
            ("high", "<f8"),
            ("low", "<f8"),
            ("close", "<f8"),
            ("tick_volume", "<u8"),
            ("spread", "<i4"),
            ("real_volume", "<u8"),
        ]
    )
    ticks = mt5.copy_ticks_from("EURUSD", WEDNESDAY - timedelta(minutes=5), 10, mt5.COPY_TICKS_ALL)
    assert ticks is not None and len(ticks) == 10
    assert ticks.dtype == np.dtype(
        [
            ("time", "<i8"),
            ("bid", "<f8"),
            ("ask", "<f8"),
            ("last", "<f8"),
            ("volume", "<u8"),
            ("time_msc", "<i8"),
            ("flags", "<u4"),
            ("volume_real", "<f8"),
        ]
    )


def test_calls_fail_before_initialize_after_shutdown_and_while_the_terminal_is_lost() -> None:
    mt5 = SimTerminal(seed=1, clock=Clock(WEDNESDAY))
    assert mt5.symbol_info_tick("EURUSD") is None
    assert mt5.last_error() == (-10004, "No IPC connection")
    assert mt5.initialize() is True
    assert mt5.last_error() == (1, "Success")
    assert mt5.symbol_info_tick("EURUSD") is not None
    mt5.shutdown()
    assert mt5.positions_get() is None
    assert mt5.last_error() == (mt5.RES_E_INTERNAL_FAIL_CONNECT, "No IPC connection")
    assert mt5.initialize()
    mt5.simulate_disconnect()
    assert mt5.account_info() is None
    assert mt5.initialize() is False
    assert mt5.last_error()[0] == mt5.RES_E_INTERNAL_FAIL_INIT
    mt5.simulate_reconnect()
    assert mt5.account_info() is None  # still needs initialize(), as after a real terminal restart
    assert mt5.initialize() is True
    assert mt5.account_info() is not None


def test_initialize_refuses_another_account_or_server(mt5: SimTerminal) -> None:
    account = mt5.account_info()
    assert account is not None
    other = SimTerminal(seed=1, clock=Clock(WEDNESDAY))
    assert other.initialize(login=account.login + 1, password="x") is False
    assert other.last_error()[0] == mt5.RES_E_AUTH_FAILED
    assert other.initialize(login=account.login, server="Elsewhere-Live") is False
    assert other.initialize(login=account.login, password="anything", server=account.server) is True
    assert other.login(account.login) is True


def test_version_terminal_and_account_describe_a_simulated_hedging_demo(mt5: SimTerminal) -> None:
    version = mt5.version()
    assert version is not None and version[0] == 500 and version[1] > 4000 and isinstance(version[2], str)
    terminal = mt5.terminal_info()
    assert terminal is not None
    assert terminal.connected and terminal.trade_allowed
    assert (terminal.company, terminal.name) == ("mt5console simulator", "SIMULATED")
    assert terminal.data_path and terminal.path
    account = mt5.account_info()
    assert account is not None
    assert (account.currency, account.leverage, account.balance) == ("USD", 100, 10_000.0)
    assert account.margin_mode == mt5.ACCOUNT_MARGIN_MODE_RETAIL_HEDGING
    assert account.trade_mode == mt5.ACCOUNT_TRADE_MODE_DEMO
    assert (account.equity, account.margin, account.margin_free, account.margin_level) == (
        10_000.0,
        0.0,
        10_000.0,
        0.0,
    )
    assert SimTerminal(seed=1, clock=Clock(WEDNESDAY), balance=2500.0).initialize()


def test_unknown_symbols_and_bad_arguments_return_none_with_the_module_codes(mt5: SimTerminal) -> None:
    assert mt5.symbol_info("NOPE") is None
    assert mt5.last_error()[0] == mt5.RES_E_NOT_FOUND
    assert mt5.copy_rates_from_pos("NOPE", mt5.TIMEFRAME_H1, 0, 10) is None
    assert mt5.copy_rates_from_pos("EURUSD", 7, 0, 10) is None  # 7 is no timeframe
    assert mt5.last_error()[0] == mt5.RES_E_INVALID_PARAMS
    assert mt5.copy_rates_from_pos("EURUSD", mt5.TIMEFRAME_H1, 0, 0) is None
    assert mt5.copy_ticks_from("EURUSD", WEDNESDAY, 10, 99) is None
    assert mt5.history_deals_get() is None
    assert mt5.last_error()[0] == mt5.RES_E_INVALID_PARAMS
    assert mt5.positions_get(symbol="NOPE") == ()
    assert mt5.last_error() == (mt5.RES_S_OK, "Success")


def test_symbols_have_realistic_specifications(mt5: SimTerminal) -> None:
    assert mt5.symbols_total() == 7
    symbols = mt5.symbols_get()
    assert symbols is not None
    names = {s.name for s in symbols}
    assert {"EURUSD", "GBPUSD", "AUDUSD", "USDCAD", "USDJPY", "XAUUSD", "US500"} == names
    usd = mt5.symbols_get(group="*USD*,!XAU*")
    assert usd is not None and {s.name for s in usd} == {"EURUSD", "GBPUSD", "AUDUSD", "USDCAD", "USDJPY"}
    eurusd, usdjpy, gold = (mt5.symbol_info(name) for name in ("EURUSD", "USDJPY", "XAUUSD"))
    assert eurusd is not None and usdjpy is not None and gold is not None
    assert (eurusd.digits, eurusd.point, eurusd.trade_contract_size) == (5, 1e-5, 100_000.0)
    assert (eurusd.volume_min, eurusd.volume_max, eurusd.volume_step) == (0.01, 100.0, 0.01)
    assert eurusd.trade_tick_value == pytest.approx(1.0)
    assert (eurusd.currency_base, eurusd.currency_profit, eurusd.currency_margin) == ("EUR", "USD", "EUR")
    assert 6 <= eurusd.spread <= 16  # around the typical 1 pip
    assert usdjpy.digits == 3
    # USDJPY: one tick (0.001) of one lot is 100 JPY, worth 100 / USDJPY dollars.
    assert usdjpy.trade_tick_value == pytest.approx(100_000 * 0.001 / usdjpy.bid)
    assert (gold.digits, gold.trade_contract_size, gold.volume_max, gold.trade_stops_level) == (
        2,
        100.0,
        50.0,
        20,
    )
    assert 1500 <= gold.bid <= 3500
    assert eurusd.filling_mode == 3 and gold.filling_mode == 1
    assert eurusd.trade_mode == mt5.SYMBOL_TRADE_MODE_FULL
    assert eurusd.trade_calc_mode == mt5.SYMBOL_CALC_MODE_FOREX


def test_copy_rates_from_pos_puts_the_forming_bar_last(mt5: SimTerminal) -> None:
    rates = mt5.copy_rates_from_pos("EURUSD", mt5.TIMEFRAME_H1, 0, 5)
    tick = mt5.symbol_info_tick("EURUSD")
    assert rates is not None and tick is not None
    assert list(rates["time"]) == [
        int(WEDNESDAY.timestamp()) // 3600 * 3600 - 3600 * k for k in (4, 3, 2, 1, 0)
    ]
    assert rates["close"][-1] == tick.bid  # position 0 is the bar forming now
    older = mt5.copy_rates_from_pos("EURUSD", mt5.TIMEFRAME_H1, 1, 4)
    assert older is not None and np.array_equal(older, rates[:-1])


def test_initialize_and_first_rates_of_seven_symbols_are_fast() -> None:
    started = time.perf_counter()
    mt5 = SimTerminal(seed=11, clock=Clock(WEDNESDAY))
    assert mt5.initialize()
    for name in ("EURUSD", "GBPUSD", "AUDUSD", "USDCAD", "USDJPY", "XAUUSD", "US500"):
        rates = mt5.copy_rates_from_pos(name, mt5.TIMEFRAME_M15, 0, 3000)
        assert rates is not None and len(rates) == 3000
    assert time.perf_counter() - started < 2.0


def test_copy_rates_from_and_range_select_by_open_time(mt5: SimTerminal) -> None:
    recent = mt5.copy_rates_from_pos("EURUSD", mt5.TIMEFRAME_M15, 0, 40)
    assert recent is not None
    anchor = datetime.fromtimestamp(int(recent["time"][20]) + 60, UTC)  # inside bar 20
    upto = mt5.copy_rates_from("EURUSD", mt5.TIMEFRAME_M15, anchor, 5)
    assert upto is not None and np.array_equal(upto, recent[16:21])
    start, end = int(recent["time"][10]), int(recent["time"][30])
    between = mt5.copy_rates_range("EURUSD", mt5.TIMEFRAME_M15, start - 1, end)  # opens after start-1
    assert between is not None and np.array_equal(between, recent[10:31])
    naive = mt5.copy_rates_range(
        "EURUSD", mt5.TIMEFRAME_M15, datetime(2024, 3, 6, 9), datetime(2024, 3, 6, 10)
    )
    assert naive is not None and list(naive["time"]) == [
        int(datetime(2024, 3, 6, 9, m, tzinfo=UTC).timestamp()) for m in (0, 15, 30, 45)
    ] + [int(datetime(2024, 3, 6, 10, tzinfo=UTC).timestamp())]


def test_market_book_and_symbol_selection(mt5: SimTerminal) -> None:
    assert mt5.market_book_get("EURUSD") is None  # not subscribed
    assert mt5.market_book_add("EURUSD") is True
    book = mt5.market_book_get("EURUSD")
    tick = mt5.symbol_info_tick("EURUSD")
    assert book is not None and tick is not None and len(book) == 10
    prices = [level.price for level in book]
    assert prices == sorted(prices, reverse=True)
    assert {level.type for level in book[:5]} == {mt5.BOOK_TYPE_SELL} and book[4].price == tick.ask
    assert {level.type for level in book[5:]} == {mt5.BOOK_TYPE_BUY} and book[5].price == tick.bid
    assert mt5.market_book_release("EURUSD") is True
    assert mt5.symbol_select("GBPUSD", False) is True
    hidden = mt5.symbol_info("GBPUSD")
    assert hidden is not None and not hidden.visible
    assert mt5.symbol_select("GBPUSD") is True
    assert mt5.symbol_select("NOPE") is None and mt5.last_error()[0] == mt5.RES_E_NOT_FOUND
