"""Reading bars to replay from a CSV file, with errors that name the line and column at fault.

The header names the columns, case insensitive (``Open``, ``<CLOSE>`` ...): the time is ``time``,
``datetime``, ``date`` or ``timestamp``, or an unnamed first column (a pandas index), or a ``date`` and a
``time`` column together (MT5's own "Export bars" file: ``<DATE>``, ``<TIME>``); then ``open``,
``high``, ``low``, ``close``, optionally ``volume`` (or ``tick_volume``) and ``spread`` (points).
Times are ISO 8601 (naive = UTC; MT5's ``2024.01.02 13:00`` is read too) or epoch seconds. Prices
are bid prices. Comma, semicolon and tab separated files are read, in UTF-8 or in UTF-16 with a byte
order mark (Excel's and Windows' "Unicode text"). Without a volume column each bar's tick volume is
4, the ticks the replay derives from it; a blank spread cell takes the default spread.
"""

from __future__ import annotations

import codecs
import csv
import math
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from mt5console.core.broker.sim.feed import Bars
from mt5console.core.broker.sim.frames import FRAMES, Frame, parse_frame

TIME_COLUMNS = ("time", "datetime", "date", "timestamp")
VOLUME_COLUMNS = ("volume", "tick_volume", "tickvol", "vol")
PRICE_COLUMNS = ("open", "high", "low", "close")
# Volumes and spreads are stored as int64: a larger number would wrap round to a negative one.
INT64_LIMIT = float(2**63)
# Epoch seconds past 9999-12-31 are no date a datetime (nor the replay's report) can hold.
LAST_EPOCH_SECOND = 253_402_300_799


@dataclass(frozen=True, slots=True)
class ReplayBars:
    bars: Bars  # spread holds each row's spread, or the default where the file has none
    frame: Frame
    # Split <DATE> and <TIME> columns: MetaTrader's own "Export bars", whose times are its trade
    # server's, not UTC (the replay says so unless told the offset).
    exported_by_metatrader: bool = False


def _column_key(name: str) -> str:
    return name.strip().strip("<>").strip().lower()


def _parse_time(text: str, where: str) -> tuple[int, bool]:
    """Epoch seconds, and whether the text carried its zone (an ISO offset or Z). Epoch seconds do not
    say theirs: MetaTrader's rates give them in its server's time, so a data offset shifts them as it
    shifts naive times (``zoned_time``)."""
    value = text.strip()
    try:
        number = float(value)
    except ValueError:
        pass
    else:
        if not math.isfinite(number):
            raise ValueError(f"{where}: time {text!r} is not a date")
        if abs(number) > LAST_EPOCH_SECOND:
            raise ValueError(f"{where}: time {text!r} is epoch seconds beyond the year 9999")
        return int(number), False
    candidate = value
    if len(value) >= 10 and value[4] == "." and value[7] == ".":  # MT5 export: 2024.01.02 13:00
        candidate = value[:10].replace(".", "-") + value[10:]
    try:
        when = datetime.fromisoformat(candidate)
    except ValueError:
        raise ValueError(f"{where}: time {text!r} is neither ISO 8601 nor epoch seconds") from None
    if when.tzinfo is None:
        return int(when.replace(tzinfo=UTC).timestamp()), False
    return int(when.timestamp()), True


def _parse_number(text: str, where: str, column: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"{where}: {column} {text!r} is not a number") from None
    if not math.isfinite(value):
        raise ValueError(f"{where}: {column} {text!r} is not a finite number")
    return value


def _parse_count(text: str, where: str, column: str) -> float:
    """A volume or spread: a number int64 can hold."""
    value = _parse_number(text, where, column)
    if abs(value) >= INT64_LIMIT:
        raise ValueError(f"{where}: {column} {text!r} is too large (at most {2**63 - 1:,})")
    return value


def _find_columns(header: list[str], path: Path) -> dict[str, int]:
    keys = [_column_key(name) for name in header]
    _refuse_repeated_columns(keys, header, path)
    columns: dict[str, int] = {}
    if "date" in keys and "time" in keys:
        # MT5's "Export bars" splits each bar's start into a <DATE> and a <TIME> column.
        columns["date"] = keys.index("date")
    for wanted in TIME_COLUMNS:
        if wanted in keys:
            columns["time"] = keys.index(wanted)
            break
    else:
        if keys and keys[0] == "":
            columns["time"] = 0
    for wanted in (*PRICE_COLUMNS, "spread"):
        if wanted in keys:
            columns[wanted] = keys.index(wanted)
    for wanted in VOLUME_COLUMNS:
        if wanted in keys:
            columns["volume"] = keys.index(wanted)
            break
    missing = [name for name in ("time", *PRICE_COLUMNS) if name not in columns]
    if missing:
        found = ", ".join(repr(name) for name in header) or "nothing"
        raise ValueError(
            f"{path}: missing column(s) {', '.join(missing)} in the header (found {found}); "
            f"the time may be named {', '.join(TIME_COLUMNS)} or be an unnamed first column"
        )
    return columns


def _refuse_repeated_columns(keys: list[str], header: list[str], path: Path) -> None:
    """A column the reader uses, named twice, is refused: which of the two holds the bars is a guess."""
    used = {*TIME_COLUMNS, *PRICE_COLUMNS, *VOLUME_COLUMNS, "spread"}
    for key in sorted(used & set(keys)):
        positions = [i + 1 for i, name in enumerate(keys) if name == key]
        if len(positions) > 1:
            names = " and ".join(f"{header[i - 1]!r} (column {i})" for i in positions)
            raise ValueError(f"{path}: the header names {names}: keep one column {key!r}")


def _time_text(row: list[str], columns: dict[str, int]) -> str:
    text = row[columns["time"]]
    if "date" in columns and _is_time_of_day(text):
        text = f"{row[columns['date']].strip()} {text.strip()}"
    return text


def _is_time_of_day(text: str) -> bool:
    parts = text.strip().split(":")
    return 2 <= len(parts) <= 3 and all(part.strip().isdigit() for part in parts)


def _check_row(where: str, o: float, h: float, low: float, c: float) -> None:
    if min(o, h, low, c) <= 0:
        raise ValueError(f"{where}: prices must be positive (open {o}, high {h}, low {low}, close {c})")
    if h < max(o, c, low):
        raise ValueError(f"{where}: high {h} is below the open, low or close")
    if low > min(o, c):
        raise ValueError(f"{where}: low {low} is above the open or close")


def _are_row_numbers(times: list[int]) -> bool:
    """0, 1, 2, ... (or from 1): a counter, not epoch seconds of bars in 1970."""
    return bool(times) and times[0] in (0, 1) and bool(np.all(np.diff(times) == 1))


def frame_of_spacing(spacing: int) -> Frame | None:
    """The timeframe whose bars are ``spacing`` seconds long (None when none is)."""
    for frame in FRAMES.values():
        if frame.seconds == spacing and frame.name != "MN1":
            return frame
    return None


def describe_spacing(spacing: int) -> str:
    frame = frame_of_spacing(spacing)
    return f"{spacing} s ({frame.name} bars)" if frame is not None else f"{spacing} s (no timeframe's bars)"


def infer_frame(times: list[int] | np.ndarray, path: Path | str) -> Frame:
    """The timeframe of bars whose most common spacing equals one of MT5's timeframes.

    The most common, not the smallest: one stray row off the grid (an H1 file with one 18:30 bar) would
    otherwise make the whole file M30, squeezing every bar into half its time; with the most common
    spacing, the stray row is the one refused, by its line."""
    if len(times) < 2:
        raise ValueError(f"{path}: one bar is not enough to tell the timeframe; pass timeframe=")
    spacings, counts = np.unique(np.diff(np.asarray(times, dtype=np.int64)), return_counts=True)
    spacing = int(spacings[int(np.argmax(counts))])  # the smallest of the most common, when tied
    frame = frame_of_spacing(spacing)
    if frame is None:
        raise ValueError(f"{path}: bars {spacing} s apart match no timeframe; pass timeframe=")
    return frame


def _read_text(path: Path) -> str:
    try:
        raw = path.read_bytes()
    except OSError as error:
        raise ValueError(f"cannot read the bars to replay: {error}") from None
    # Excel's and Windows' "Unicode text" is UTF-16 with a byte order mark, which names the encoding.
    utf16 = raw.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE))
    try:
        return raw.decode("utf-16" if utf16 else "utf-8-sig")
    except UnicodeDecodeError as error:
        encoding = "UTF-16" if utf16 else "UTF-8"
        raise ValueError(
            f"{path}: not {encoding} text (save it as UTF-8): byte {error.start} of the file "
            f"(0x{raw[error.start]:02x}) cannot be read as {encoding}"
        ) from None


@dataclass(frozen=True, slots=True)
class _Table:
    header: list[str]
    columns: dict[str, int]
    rows: Iterator[tuple[int, list[str]]]  # (line number, cells) of the bars, blank lines skipped
    unnamed_time: bool  # the time is the unnamed first column (a pandas index)


def _open_table(path: Path) -> _Table:
    lines = _read_text(path).splitlines()
    if not lines or not lines[0].strip():
        raise ValueError(f"{path}: the file is empty; expected a header line and bars")
    try:
        dialect: type[csv.Dialect] | csv.Dialect = csv.Sniffer().sniff(lines[0], delimiters=",;\t")
    except csv.Error:
        dialect = csv.excel
    reader = csv.reader(lines, dialect)
    header = next(reader)
    columns = _find_columns(header, path)

    def rows() -> Iterator[tuple[int, list[str]]]:
        for number, row in enumerate(reader, start=2):
            if not any(cell.strip() for cell in row):
                continue
            if len(row) < len(header):
                raise ValueError(f"{path}: line {number}: {len(row)} values for {len(header)} columns")
            yield number, row

    return _Table(header, columns, rows(), _column_key(header[columns["time"]]) == "")


def zoned_time(path: str | Path) -> tuple[int, str] | None:
    """The first bar whose ISO time carries its zone (an offset or Z), as (line number, time text); None
    when none does. A data offset applies only to times that do not say their zone: the caller refuses one
    for a file that has any. Epoch seconds say none in practice: MetaTrader's ``copy_rates_*`` stamps
    them in its server's time, and such rates are often saved as they come (pandas ``to_csv``)."""
    path = Path(path)
    table = _open_table(path)
    for number, row in table.rows:
        text = _time_text(row, table.columns)
        if _parse_time(text, f"{path}: line {number}")[1]:
            return number, text.strip()
    return None


def load_bars(path: str | Path, *, timeframe: str | int | None, default_spread: int) -> ReplayBars:
    """Read and validate the file; ValueError naming the file, line and column for any fault."""
    path = Path(path)
    table = _open_table(path)
    columns = table.columns
    times: list[int] = []
    line_numbers: list[int] = []
    rows: list[tuple[float, float, float, float, float, float]] = []
    for number, row in table.rows:
        where = f"{path}: line {number}"
        time = _parse_time(_time_text(row, columns), where)[0]
        o, h, low, c = (_parse_number(row[columns[name]], where, name) for name in PRICE_COLUMNS)
        _check_row(where, o, h, low, c)
        volume = _parse_count(row[columns["volume"]], where, "volume") if "volume" in columns else 4.0
        spread_text = row[columns["spread"]] if "spread" in columns else ""
        # A blank cell is a bar without a spread, as in a file without the column: the default's.
        spread = _parse_count(spread_text, where, "spread") if spread_text.strip() else default_spread
        if volume < 0 or spread < 0 or spread != int(spread):
            raise ValueError(
                f"{where}: volume and spread must be non-negative (spread a whole number of points)"
            )
        if times and time <= times[-1]:
            raise ValueError(f"{where}: time {row[columns['time']]!r} is not after the previous bar's")
        times.append(time)
        line_numbers.append(number)
        rows.append((o, h, low, c, volume, spread))
    if table.unnamed_time and _are_row_numbers(times):
        raise ValueError(
            f"{path}: missing column time: the unnamed first column holds the row numbers "
            f"{', '.join(str(t) for t in times[:3])}, ... (a pandas index), not times; write the file "
            "with its times in a column named time (or as the index)"
        )
    if not rows:
        raise ValueError(f"{path}: no bars after the header")
    frame = parse_frame(timeframe) if timeframe is not None else infer_frame(times, path)
    if frame.name in ("W1", "MN1"):
        raise ValueError(f"{path}: {frame.name} bars cannot be replayed; use D1 or shorter bars")
    for i in range(1, len(times)):
        gap = times[i] - times[i - 1]
        if gap < frame.seconds:
            where = f"{path}: line {line_numbers[i]}"
            raise ValueError(
                f"{where}: bar starts {gap} s after the previous one, less than one {frame.name} bar "
                f"(the bars are {describe_spacing(gap)}, not {frame.name})"
            )
    values = np.array(rows, dtype=np.float64)
    bars = Bars(
        np.array(times, dtype=np.int64),
        values[:, 0],
        values[:, 1],
        values[:, 2],
        values[:, 3],
        np.maximum(values[:, 4], 1).astype(np.int64),
        values[:, 5].astype(np.int64),
    )
    return ReplayBars(bars, frame, exported_by_metatrader="date" in columns)


RATES_FIELDS = ("time", *PRICE_COLUMNS)


def bars_from_rates(rates: np.ndarray, *, timeframe: str | int | None, default_spread: int) -> ReplayBars:
    """Bars to replay from rates already in memory (the MetaTrader5 rates dtype, oldest first),
    checked as a CSV file's rows are; ValueError naming the row (0-based) and field at fault.

    ``tick_volume`` and ``spread`` are read when present (else 4 ticks and ``default_spread``).
    """
    where = "rates"
    names = (rates.dtype.names or ()) if isinstance(rates, np.ndarray) else ()
    if not isinstance(rates, np.ndarray) or rates.ndim != 1 or not names:
        raise ValueError(f"{where}: expected a one-dimensional structured array of bars (MetaTrader5 rates)")
    missing = [name for name in RATES_FIELDS if name not in names]
    if missing:
        raise ValueError(f"{where}: missing field(s) {', '.join(missing)} (found {', '.join(names)})")
    if len(rates) == 0:
        raise ValueError(f"{where}: no bars")
    times = rates["time"].astype(np.int64)
    # The prices copied out of the rows once, into one block: checked and kept as they are (the
    # fields of packed rows are read several times slower in place than a contiguous column).
    prices = np.empty((len(PRICE_COLUMNS), len(rates)), dtype=np.float64)
    for column, name in zip(prices, PRICE_COLUMNS, strict=True):
        column[:] = rates[name]
    o, h, low, c = prices
    if not ((prices > 0) & (prices < np.inf)).all():  # NaN is neither
        for name, column in zip(PRICE_COLUMNS, prices, strict=True):
            bad = np.flatnonzero(~np.isfinite(column) | (column <= 0))
            if bad.size:
                row = int(bad[0])
                raise ValueError(f"{where}: row {row}: {name} {column[row]!r} is not a positive finite price")
    checks = (
        (h < np.maximum(np.maximum(o, c), low), "high is below the open, low or close"),
        (low > np.minimum(o, c), "low is above the open or close"),
    )
    for broken, text in checks:
        bad = np.flatnonzero(broken)
        if bad.size:
            row = int(bad[0])
            raise ValueError(
                f"{where}: row {row}: {text} (open {o[row]}, high {h[row]}, low {low[row]}, close {c[row]})"
            )
    gaps = np.diff(times)
    bad = np.flatnonzero(gaps <= 0)
    if bad.size:
        row = int(bad[0]) + 1
        raise ValueError(f"{where}: row {row}: time {times[row]} is not after the previous bar's")
    frame = parse_frame(timeframe) if timeframe is not None else infer_frame(times, where)
    if frame.name in ("W1", "MN1"):
        raise ValueError(f"{where}: {frame.name} bars cannot be replayed; use D1 or shorter bars")
    short = np.flatnonzero(gaps < frame.seconds)
    if short.size:
        row, gap = int(short[0]) + 1, int(gaps[short[0]])
        raise ValueError(
            f"{where}: row {row}: bar starts {gap} s after the previous one, less than one {frame.name} bar "
            f"(the bars are {describe_spacing(gap)}, not {frame.name})"
        )
    if "tick_volume" in names:
        volume = np.maximum(np.asarray(rates["tick_volume"]).astype(np.int64), 1)
    else:
        volume = np.full(len(rates), 4, dtype=np.int64)
    if "spread" in names:
        spread = np.asarray(rates["spread"]).astype(np.int64)
        bad = np.flatnonzero(spread < 0)
        if bad.size:
            raise ValueError(f"{where}: row {int(bad[0])}: spread {spread[bad[0]]} is negative")
    else:
        spread = np.full(len(rates), default_spread, dtype=np.int64)
    bars = Bars(times, o, h, low, c, volume, spread)
    return ReplayBars(bars, frame)
