"""The MetaTrader5 module's rates dtype: what ``copy_rates_*`` returns, one record per bar.

Bars cross the core as these structured arrays (oldest first), not as dataclasses: the indicators
hand their columns to TA-Lib as they are. The simulator builds them and the tests and benchmarks
write bars in them; ``tests/test_sim_api_surface.py`` keeps its own literal copy on purpose, as the
contract this one must match.
"""

from __future__ import annotations

from typing import Final

import numpy as np

RATES_DTYPE: Final = np.dtype(
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
