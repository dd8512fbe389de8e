"""Broker access: the async adapter over any MetaTrader5-like module, and the simulator."""
