"""Margin and profit in the account currency (USD), as MetaTrader computes them.

- Margin, SYMBOL_CALC_MODE_FOREX: volume x contract / leverage, in the margin (base) currency,
  converted to USD: EURUSD 1 lot at 1.085 = 100000 x 1.085 / 100 = 1085 USD; USDJPY 1 lot = 1000 USD;
  XAUUSD 1 lot at 2300 = 100 x 2300 / 100 = 2300 USD.
  SYMBOL_CALC_MODE_CFDLEVERAGE (US500): volume x contract x price / leverage.
  An open position's margin uses its open price.
- Profit: (close - open) x contract x volume (sign by side), in the profit (quote) currency, converted
  to USD. A symbol that is itself the conversion pair converts at the closing price (a USDJPY position
  closed at 151.20 turns its yen into dollars at 151.20); other currencies at the current bid of
  their USD pair.
- Amounts are rounded to cents, as the account's currency_digits (2) says.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from mt5console.core.broker.sim import constants as c
from mt5console.core.broker.sim.state import OpenPosition
from mt5console.core.broker.sim.symbols import SYMBOLS, SymbolSpec

ACCOUNT_CURRENCY = "USD"
CURRENCY_DIGITS = 2

PriceOf = Callable[[str], float | None]  # the current bid of a symbol, None when it has no price
# A currency's pairs with the account currency (direct, inverse), named once: every margin is converted.
_PAIRS: dict[str, tuple[str, str]] = {}


def _pairs(currency: str) -> tuple[str, str]:
    """The symbols pairing ``currency`` with the account currency: (direct, inverse)."""
    pairs = _PAIRS.get(currency)
    if pairs is None:
        pairs = _PAIRS[currency] = (f"{currency}{ACCOUNT_CURRENCY}", f"{ACCOUNT_CURRENCY}{currency}")
    return pairs


def usd_rate(currency: str, spec: SymbolSpec, price: float, price_of: PriceOf) -> float:
    """How many USD one unit of ``currency`` is worth; ``price`` is ``spec``'s own price to use."""
    if currency == ACCOUNT_CURRENCY:
        return 1.0
    direct, inverse = _PAIRS.get(currency) or _pairs(currency)
    if spec.name == direct:
        return price
    if spec.name == inverse:
        return 1.0 / price
    for name, invert in ((direct, False), (inverse, True)):
        if name in SYMBOLS:
            quote = price_of(name)
            if quote:
                return 1.0 / quote if invert else quote
    raise ValueError(f"no price to convert {currency} into {ACCOUNT_CURRENCY}")


def margin(spec: SymbolSpec, volume: float, price: float, leverage: int, price_of: PriceOf) -> float:
    """The margin in USD of ``volume`` lots of ``spec`` opened at ``price`` (either side)."""
    units = volume * spec.contract_size / leverage
    if spec.calc_mode == c.SYMBOL_CALC_MODE_CFDLEVERAGE:
        units *= price
    return round(units * usd_rate(spec.currency_margin, spec, price, price_of), CURRENCY_DIGITS)


def profit(
    spec: SymbolSpec, is_buy: bool, volume: float, price_open: float, price_close: float, price_of: PriceOf
) -> float:
    """The profit in USD of ``volume`` lots bought (or sold) at price_open and closed at price_close."""
    move = (price_close - price_open) if is_buy else (price_open - price_close)
    raw = move * spec.contract_size * volume
    currency = spec.currency_profit
    rate = 1.0 if currency == ACCOUNT_CURRENCY else usd_rate(currency, spec, price_close, price_of)
    return round(raw * rate, CURRENCY_DIGITS)


def tick_value(spec: SymbolSpec, bid: float, price_of: PriceOf) -> float:
    """USD value of one tick on one lot at the current price."""
    return spec.tick_size * spec.contract_size * usd_rate(spec.currency_profit, spec, bid, price_of)


def margin_reads_prices(spec: SymbolSpec) -> bool:
    """Whether ``margin`` of ``spec`` converts at other symbols' current prices (its margin currency
    is neither the account's nor priced by the symbol itself), so that it changes with the market."""
    currency = spec.currency_margin
    return currency != ACCOUNT_CURRENCY and spec.name not in _pairs(currency)


def hedged_margin(positions: Iterable[OpenPosition], leverage: int, price_of: PriceOf) -> float:
    """The account margin: per symbol only the larger leg (buys or sells) is charged.

    This is MT5's hedged-margin rule with SYMBOL_MARGIN_HEDGED_USE_LEG set: a buy and a sell of one
    lot each need the margin of one lot, and each leg's margin is the sum of its positions' margins.
    """
    legs: dict[str, list[float]] = {}  # symbol -> [its buys' margin, its sells' margin]
    count = 0
    for position in positions:
        count += 1
        symbol = position.symbol
        amount = margin(SYMBOLS[symbol], position.volume, position.price_open, leverage, price_of)
        leg = legs.get(symbol)
        if leg is None:
            leg = legs[symbol] = [0.0, 0.0]
        leg[0 if position.type == c.POSITION_TYPE_BUY else 1] += amount
    total = 0.0
    for buys, sells in legs.values():
        total += max(buys, sells)
    return _sum_in_cents(total, count)


def open_profit(
    positions: Iterable[OpenPosition], price_now: Callable[[OpenPosition], float], price_of: PriceOf
) -> float:
    """The positions' profit were they closed at ``price_now``, summed in order."""
    total = 0.0
    count = 0
    for position in positions:
        count += 1
        spec = SYMBOLS[position.symbol]
        is_buy = position.type == c.POSITION_TYPE_BUY
        total += profit(spec, is_buy, position.volume, position.price_open, price_now(position), price_of)
    return _sum_in_cents(total, count)


def _sum_in_cents(total: float, count: int) -> float:
    """A sum of ``count`` amounts in cents, rounded to cents. A single amount (0.0 + it) is in cents
    already, and rounding it again would give it back (round(round(x, 2), 2) == round(x, 2)): it is
    kept as it is, sparing a rounding (one of the costlier steps) when one position is valued."""
    return total if count == 1 else round(total, CURRENCY_DIGITS)
