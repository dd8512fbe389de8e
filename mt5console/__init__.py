"""mt5console: a terminal trading console bridging MetaTrader 5 and a web platform."""

__version__ = "0.1.0"
