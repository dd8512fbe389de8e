"""The simulated terminal's symbols: contract specifications as a typical retail broker has them.

Choices worth knowing (documented here because tests and adapters rely on them):
- FX majors and XAUUSD trade round the clock, every day, so the console and its tests work on any
  day of the week; only the index CFD US500 has real sessions (UTC, as CME Globex in summer): Sunday
  22:00 to Friday 21:00 with a daily break 21:00-22:00. Orders outside them get MARKET_CLOSED.
- Execution is SYMBOL_TRADE_EXECUTION_MARKET, so a market deal accepts only the filling types in the
  symbol's ``filling_mode`` bit mask (FOK = 1, IOC = 2): majors allow both, XAUUSD only FOK, US500
  only IOC; ORDER_FILLING_RETURN is refused for market deals (TRADE_RETCODE_INVALID_FILL). As on a
  real market-execution symbol, a deal fills at the market price whatever the request's ``price``
  and ``deviation`` say: there are no requotes.
- ``trade_stops_level`` (points): 0 for FX, 20 for XAUUSD, 100 for US500.
- Hedged margin: ``margin_hedged_use_leg`` is set, so per symbol only the larger leg (buys or sells)
  is charged.
- No swaps and no commissions are charged (``swap_mode`` DISABLED).
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field
from typing import Final

from mt5console.core.broker.sim import constants as c

# Bits of SymbolInfo.order_mode (the module has no names for them): market orders, SL and TP only,
# because the simulator does not simulate pending orders or close-by.
ORDER_MODE_MARKET: Final = 1
ORDER_MODE_SL: Final = 16
ORDER_MODE_TP: Final = 32
FILLING_FOK_BIT: Final = 1
FILLING_IOC_BIT: Final = 2
EXPIRATION_ALL: Final = 15  # GTC | DAY | SPECIFIED | SPECIFIED_DAY

HOURS = tuple[bool, ...]  # 24 flags: is the hour traded
_ALL_DAY: Final[HOURS] = (True,) * 24


def _hours(*ranges: tuple[int, int]) -> HOURS:
    return tuple(any(start <= hour < end for start, end in ranges) for hour in range(24))


# Traded hours per weekday, Monday = 0 ... Sunday = 6 (UTC).
ROUND_THE_CLOCK: Final[tuple[HOURS, ...]] = (_ALL_DAY,) * 7
INDEX_SESSIONS: Final[tuple[HOURS, ...]] = (
    _hours((0, 21), (22, 24)),  # Monday
    _hours((0, 21), (22, 24)),
    _hours((0, 21), (22, 24)),
    _hours((0, 21), (22, 24)),  # Thursday
    _hours((0, 21)),  # Friday: closes for the weekend at 21:00
    _hours(),  # Saturday
    _hours((22, 24)),  # Sunday: opens at 22:00
)


@dataclass(frozen=True, slots=True)
class SymbolSpec:
    """A symbol's fixed specification and the parameters of its simulated price walk."""

    name: str
    description: str
    path: str
    digits: int
    contract_size: float
    currency_base: str
    currency_profit: str
    currency_margin: str
    calc_mode: int
    volume_min: float
    volume_max: float
    volume_step: float
    stops_level: int  # points
    spread: int  # typical spread, points
    filling_mode: int  # bit mask FOK = 1, IOC = 2
    level: float  # the price the walk reverts to
    daily_vol: float  # standard deviation of daily log returns
    sessions: tuple[HOURS, ...] = field(default=ROUND_THE_CLOCK)
    # SYMBOL_TRADE_EXECUTION_*: every symbol here is MARKET, where a deal fills at the market whatever
    # the request's price and deviation; INSTANT or REQUEST would requote beyond the deviation.
    execution: int = c.SYMBOL_TRADE_EXECUTION_MARKET
    # The price step, 10 ** -digits: computed once, since every order and valuation reads it.
    point: float = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "point", float(10.0**-self.digits))

    @property
    def tick_size(self) -> float:
        return self.point

    @property
    def spread_range(self) -> tuple[int, int]:
        """The lowest and highest spread (points) the feed quotes; it varies a little around typical."""
        return max(1, self.spread - self.spread // 5), self.spread + self.spread // 3

    @property
    def key(self) -> int:
        """A stable number for the symbol, mixed into the seed (hash() is salted per process)."""
        return zlib.crc32(self.name.encode())

    def traded(self, weekday: int, hour: int) -> bool:
        return self.sessions[weekday][hour]


def _fx(name: str, description: str, digits: int, spread: int, level: float, vol: float) -> SymbolSpec:
    base, quote = name[:3], name[3:]
    return SymbolSpec(
        name=name,
        description=description,
        path=f"Forex\\Majors\\{name}",
        digits=digits,
        contract_size=100_000.0,
        currency_base=base,
        currency_profit=quote,
        currency_margin=base,
        calc_mode=c.SYMBOL_CALC_MODE_FOREX,
        volume_min=0.01,
        volume_max=100.0,
        volume_step=0.01,
        stops_level=0,
        spread=spread,
        filling_mode=FILLING_FOK_BIT | FILLING_IOC_BIT,
        level=level,
        daily_vol=vol,
    )


SYMBOLS: Final[dict[str, SymbolSpec]] = {
    spec.name: spec
    for spec in (
        _fx("EURUSD", "Euro vs US Dollar", 5, 10, 1.08, 0.005),
        _fx("GBPUSD", "Great Britain Pound vs US Dollar", 5, 14, 1.27, 0.006),
        _fx("AUDUSD", "Australian Dollar vs US Dollar", 5, 12, 0.66, 0.007),
        _fx("USDCAD", "US Dollar vs Canadian Dollar", 5, 16, 1.36, 0.0045),
        _fx("USDJPY", "US Dollar vs Japanese Yen", 3, 12, 150.0, 0.006),
        SymbolSpec(
            name="XAUUSD",
            description="Gold vs US Dollar",
            path="Metals\\XAUUSD",
            digits=2,
            contract_size=100.0,
            currency_base="XAU",
            currency_profit="USD",
            currency_margin="XAU",
            calc_mode=c.SYMBOL_CALC_MODE_FOREX,
            volume_min=0.01,
            volume_max=50.0,
            volume_step=0.01,
            stops_level=20,
            spread=30,
            filling_mode=FILLING_FOK_BIT,
            level=2300.0,
            daily_vol=0.01,
        ),
        SymbolSpec(
            name="US500",
            description="US 500 Cash Index",
            path="Indices\\US500",
            digits=2,
            contract_size=1.0,
            currency_base="USD",
            currency_profit="USD",
            currency_margin="USD",
            calc_mode=c.SYMBOL_CALC_MODE_CFDLEVERAGE,
            volume_min=0.1,
            volume_max=100.0,
            volume_step=0.1,
            stops_level=100,
            spread=50,
            filling_mode=FILLING_IOC_BIT,
            level=5000.0,
            daily_vol=0.01,
            sessions=INDEX_SESSIONS,
        ),
    )
}


def symbols_named_in(file_name: str) -> list[str]:
    """The simulator's symbols whose names appear in ``file_name`` (EURUSD_H1.csv: ["EURUSD"])."""
    upper = file_name.upper()
    return [name for name in SYMBOLS if name in upper]
