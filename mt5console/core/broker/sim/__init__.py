"""The simulated MetaTrader 5 terminal: the MetaTrader5 module's API over a seeded walk or replayed bars.

``SimTerminal(seed=1)`` offers the module's functions, constants and named tuples (terminal.py);
the same constants are module-level names in ``constants``, the named tuples live in ``records``.
"""

from mt5console.core.broker.sim.terminal import SimTerminal

__all__ = ["SimTerminal"]
