"""Single facts about the console kept between sessions, in the meta table."""

from __future__ import annotations

from sqlmodel import Session

from mt5console.core.store.base import StoreBase
from mt5console.core.store.tables import MetaRecord

SERVER_OFFSET_KEY = "server_utc_offset"  # seconds the trade server's clock was last seen ahead of UTC


class MetaStore(StoreBase):
    def remembered_server_offset(self) -> int | None:
        """The trade server's offset from UTC learned last (broker/server_clock.py), None if never
        learned, or if what is kept is not a whole number of seconds (then it is learned again)."""
        with self._read() as session:
            record = session.get(MetaRecord, SERVER_OFFSET_KEY)
        if record is None:
            return None
        try:
            return int(record.value)
        except ValueError:
            return None

    def remember_server_offset(self, seconds: int) -> None:
        with self._write() as session:
            swap_meta(session, SERVER_OFFSET_KEY, str(int(seconds)))


def swap_meta(session: Session, key: str, value: str) -> str | None:
    """Set ``key`` to ``value`` in the meta table, in the caller's transaction; returns what it held."""
    record = session.get(MetaRecord, key)
    if record is None:
        session.add(MetaRecord(key=key, value=value))
        return None
    previous, record.value = record.value, value
    return previous
