"""The trade server's clock: how far ahead of UTC the times MetaTrader 5 hands out are.

A real terminal stamps ticks, bars, positions and deals in its trade server's time (often UTC+2 in
winter and UTC+3 in summer), as epoch seconds that read like UTC; and it reads the dates given to
``copy_rates_range`` and ``history_deals_get`` the same way. The console works in UTC throughout
(sessions, the daily loss limit, stored trades, reports), so the broker adapter converts both ways
with the offset kept here.

The offset is configured (``--server-utc-offset``), or learned. The server's clock is seen only
through ticks, and a tick is proof of it only while it is fresh: a symbol whose tick time moved since
the adapter read it moments before, by no more than the time between the reads, got that tick between
the two reads, so its time is the server's "now" give or take the poll interval (``_live``). The last
tick of a closed market is hours old and says nothing; nor does a terminal catching up on old quotes
after a start or a reconnect, which moves every tick at once by hours. Offsets are whole quarter hours;
a fresh tick more than a few minutes off a quarter hour from this computer's clock means the
computer's clock is wrong, and is said, not learned from.

Until a fresh tick has been seen (``known`` False) the adapter uses the offset remembered from the
last session, else UTC (``guessed``), and the market data holds the strategies' bars (market.py): no
strategy acts on a bar whose time might be hours off. A learned offset changes (a daylight-saving
switch) only after ``CONFIRMATIONS`` fresh ticks in a row, from separate reads, agree on the new one.
This class has no lock: the terminal thread writes it, the event loop reads whole ints and takes the
notes (see ``take_notes``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final

QUARTER_HOUR: Final = 900
MAX_OFFSET: Final = 14 * 3600  # UTC-12 .. UTC+14 are the world's time zones
# A fresh tick may be this much off a quarter hour from the computer's clock: the poll interval,
# the tick's trip and an NTP-synced clock's drift. Beyond it the computer's clock is wrong.
MAX_SKEW: Final = 120
CONFIRMATIONS: Final = 3  # fresh ticks in a row, from separate reads, that must agree to change it
MAX_READ_GAP: Final = 60.0  # seconds: two reads of a tick further apart prove nothing of its time

Now = Callable[[], datetime]


def server_clock_for(
    server_utc_offset: float | str, *, simulated: bool, sim_offset_hours: float, remembered: int | None
) -> ServerClock:
    """The clock the runtime's adapter converts with: the configured offset; else the simulator's own
    (the console runs it, so its clock is known, not guessed); else learned from a real terminal's
    live ticks, starting from the one ``remembered`` from the last session."""
    if server_utc_offset != "auto":
        return ServerClock.configured(offset_from_hours(float(server_utc_offset)))
    if simulated:
        return ServerClock.fixed(
            offset_from_hours(sim_offset_hours), origin="the simulated terminal's setting"
        )
    return ServerClock.learning(remembered)


def _live(previous: tuple[int, float], time_msc: int, now: float) -> bool:
    """Whether a tick read at ``now`` is the server's "now": it moved since the read before, that read
    was moments ago, and it moved no further than the time between the two reads. A first sight or
    an unmoved tick may be days old (a closed market); a jump from an empty tick (time 0), or further
    than the time between the reads, is a terminal catching up on old quotes (just started, or
    reconnected on a weekend), not a live one; reads far apart (a reconnect) leave the time unknown."""
    previous_msc, read_at = previous
    if previous_msc <= 0 or time_msc <= previous_msc:
        return False
    gap = now - read_at
    return gap <= MAX_READ_GAP and (time_msc - previous_msc) / 1000 <= gap + MAX_SKEW


def system_now() -> datetime:
    return datetime.now(UTC)


def describe_offset(seconds: int) -> str:
    """``UTC+03:00``, ``UTC-04:30``, ``UTC+00:00``."""
    sign = "-" if seconds < 0 else "+"
    minutes = abs(seconds) // 60
    return f"UTC{sign}{minutes // 60:02d}:{minutes % 60:02d}"


def offset_from_hours(hours: float) -> int:
    """Seconds from a number of hours, which must be whole quarter hours within UTC-12..UTC+14."""
    seconds = round(hours * 3600)
    if abs(hours * 3600 - seconds) > 1e-6 or seconds % QUARTER_HOUR:
        raise ValueError(f"{hours:g} hours is not a whole number of quarter hours")
    if not -12 * 3600 <= seconds <= MAX_OFFSET:
        raise ValueError(f"{hours:g} hours is outside UTC-12..UTC+14")
    return seconds


@dataclass(frozen=True, slots=True)
class ClockNote:
    """Something to tell the user about the server's clock (published by the adapter on the loop)."""

    warning: bool
    message: str
    learned: int | None = None  # the offset just learned (to be remembered), if any


class ServerClock:
    """The offset (seconds) to subtract from the terminal's times to get UTC; see the module doc."""

    def __init__(
        self,
        offset: int = 0,
        *,
        known: bool = True,
        learn: bool = False,
        watch: bool = False,
        guessed: bool = False,
        origin: str = "UTC",
        now: Now = system_now,
    ) -> None:
        self.offset = offset
        self.known = known
        # A bare guess: unconfirmed and neither configured nor remembered (a first start in auto,
        # before any live tick): times converted with it are hours off on most brokers.
        self.guessed = guessed
        self._learn = learn
        # watch: show the ticks to ``observe`` (to learn, or to warn when they disagree with a
        # configured offset); the replay's and the simulator's clocks are known and skip it.
        self.watching = watch or learn
        self.origin = origin  # how the offset was found, for the log
        self._now = now
        # symbol -> the tick time (ms, server) read last, and when it was read (s, this computer)
        self._seen: dict[str, tuple[int, float]] = {}
        self._candidate: int | None = None  # a different offset being confirmed
        self._agreeing = 0
        self._agreed_at = 0.0  # when the candidate was last confirmed (this computer's clock, s)
        self._told: set[int] = set()  # offsets already said to disagree with the configured one
        self._skew_said = False
        self._notes: list[ClockNote] = []

    @classmethod
    def fixed(cls, offset: int = 0, origin: str = "UTC") -> ServerClock:
        """A clock that never changes and watches nothing: the replay's (bars in UTC), the simulator's."""
        return cls(offset, origin=origin)

    @classmethod
    def configured(cls, offset: int, now: Now = system_now) -> ServerClock:
        """``--server-utc-offset``: never changed, but the ticks are watched to warn when they disagree."""
        return cls(offset, origin="--server-utc-offset", watch=True, now=now)

    @classmethod
    def learning(cls, remembered: int | None, now: Now = system_now) -> ServerClock:
        """Learned from fresh ticks; until then the ``remembered`` offset of the last session, or UTC."""
        origin = "remembered from the last session" if remembered is not None else "assumed"
        guessed = remembered is None
        return cls(remembered or 0, known=False, learn=True, guessed=guessed, origin=origin, now=now)

    @property
    def offset_ms(self) -> int:
        return self.offset * 1000

    def describe(self) -> str:
        state = "" if self.known else ", not confirmed by a live tick yet"
        return f"{describe_offset(self.offset)} ({self.origin}{state})"

    # ----------------------------------------------------------------- on the terminal thread

    def observe(self, symbol: str, time_msc: int) -> None:
        """A tick of ``symbol`` stamped ``time_msc`` (server time) was just read."""
        now = self._now().timestamp()
        previous = self._seen.get(symbol)
        self._seen[symbol] = (time_msc, now)
        if previous is None or not _live(previous, time_msc, now):
            return
        ahead = time_msc / 1000 - now
        offset = round(ahead / QUARTER_HOUR) * QUARTER_HOUR
        skew = ahead - offset
        if abs(skew) > MAX_SKEW or abs(offset) > MAX_OFFSET:
            self._say_skew(symbol, skew)
            return
        self._fresh(symbol, offset, now)

    def _say_skew(self, symbol: str, skew: float) -> None:
        if self._skew_said:
            return
        self._skew_said = True
        self._notes.append(
            ClockNote(
                True,
                f"{symbol}'s live ticks are {abs(skew) / 60:.1f} min off a whole quarter hour from this "
                "computer's clock: this computer's clock looks wrong (check its time sync); the trade "
                f"server's clock is taken as {self.describe()}",
            )
        )

    def _fresh(self, symbol: str, offset: int, now: float) -> None:
        if offset == self.offset:
            self._candidate, self._agreeing = None, 0
            if not self.known:
                self.known, self.guessed = True, False
                self.origin = f"learned from {symbol}'s live ticks"
                self._notes.append(
                    ClockNote(False, f"the trade server's clock runs at {self.describe()}", learned=offset)
                )
            return
        if not self._learn:
            if offset not in self._told:
                self._told.add(offset)
                self._notes.append(
                    ClockNote(
                        True,
                        f"{symbol}'s live ticks say the trade server's clock runs at "
                        f"{describe_offset(offset)}, but --server-utc-offset says "
                        f"{describe_offset(self.offset)}: times are converted as configured",
                    )
                )
            return
        if not self.known:
            self._learned(symbol, offset, before=None)
            return
        if offset != self._candidate:
            self._candidate, self._agreeing = offset, 0
        elif now - self._agreed_at < 1.0:
            return  # another symbol of the same read: the confirmations must come from separate reads
        self._agreeing += 1
        self._agreed_at = now
        if self._agreeing >= CONFIRMATIONS:
            self._learned(symbol, offset, before=self.offset)

    def _learned(self, symbol: str, offset: int, *, before: int | None) -> None:
        self.offset, self.known, self.guessed = offset, True, False
        self.origin = f"learned from {symbol}'s live ticks"
        self._candidate, self._agreeing = None, 0
        if before is None:
            message = f"the trade server's clock runs at {self.describe()}"
        else:
            message = (
                f"the trade server's clock moved from {describe_offset(before)} to "
                f"{describe_offset(offset)} (a daylight-saving switch?): times are converted with "
                "the new offset"
            )
        self._notes.append(ClockNote(before is not None, message, learned=offset))

    # ----------------------------------------------------------------- on the event loop

    def take_notes(self) -> list[ClockNote]:
        """The notes since the last call (``list.pop`` is atomic: no note is lost or given twice)."""
        taken: list[ClockNote] = []
        while self._notes:
            taken.append(self._notes.pop(0))
        return taken
