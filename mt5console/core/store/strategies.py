"""Strategies and their magic numbers."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlmodel import Session, col, select

from mt5console.core.store.base import StoreBase, aware, json_object, member, text
from mt5console.core.store.errors import RecordNotFoundError
from mt5console.core.store.tables import StrategyRecord, StrategyState

# MT5 takes the magic as a signed 32-bit int; numbers below 100000 are left to EAs and manual tools.
MAGIC_MIN = 100_000
MAGIC_MAX = 2**31 - 1


def preferred_magic(strategy_id: str) -> int:
    """The magic a strategy id gets unless another strategy already holds it: derived from the id
    so that even a new database gives a running strategy back the number its positions carry."""
    digest = hashlib.blake2b(strategy_id.encode("utf-8"), digest_size=8).digest()
    return MAGIC_MIN + int.from_bytes(digest, "big") % (MAGIC_MAX - MAGIC_MIN + 1)


class StrategyStore(StoreBase):
    def save_strategy(
        self,
        strategy_id: str,
        *,
        name: str,
        symbol: str,
        timeframe: str,
        definition: Mapping[str, Any],
        state: StrategyState | str = StrategyState.RUNNING,
        reason: str = "",
        when: datetime | None = None,
    ) -> StrategyRecord:
        """Insert or replace a strategy (a START of a running id replaces it); the magic number of a
        known id never changes, a new id is given one in the same transaction."""
        strategy_id = text("strategy_id", strategy_id)
        now = aware("when", when)
        checked = StrategyRecord(
            id=strategy_id,
            name=text("name", name),
            symbol=text("symbol", symbol),
            timeframe=text("timeframe", timeframe),
            definition=json_object("definition", dict(definition)),
            magic=0,
            state=member("state", StrategyState, state),
            state_reason=reason,
            created_at=now,
            updated_at=now,
        )
        with self._write() as session:
            record = session.get(StrategyRecord, strategy_id)
            if record is None:
                checked.magic = _free_magic(session, strategy_id)
                session.add(checked)
                return checked
            for field in ("name", "symbol", "timeframe", "definition", "state", "state_reason", "updated_at"):
                setattr(record, field, getattr(checked, field))
            return record

    def get_strategy(self, strategy_id: str) -> StrategyRecord | None:
        with self._read() as session:
            return session.get(StrategyRecord, strategy_id)

    def strategy_by_magic(self, magic: int) -> StrategyRecord | None:
        """The strategy a position or deal belongs to, from the magic number it carries."""
        with self._read() as session:
            return session.exec(select(StrategyRecord).where(StrategyRecord.magic == magic)).first()

    def strategy_id_of_magic(self, magic: int) -> str | None:
        """The id of the strategy whose magic number ``magic`` is (None: no strategy of the console)."""
        record = self.strategy_by_magic(magic)
        return None if record is None else record.id

    def list_strategies(self, state: StrategyState | str | None = None) -> list[StrategyRecord]:
        statement = select(StrategyRecord).order_by(col(StrategyRecord.created_at), col(StrategyRecord.id))
        if state is not None:
            statement = statement.where(StrategyRecord.state == member("state", StrategyState, state))
        with self._read() as session:
            return list(session.exec(statement).all())

    def set_strategy_state(
        self, strategy_id: str, state: StrategyState | str, reason: str = "", when: datetime | None = None
    ) -> StrategyRecord:
        new_state = member("state", StrategyState, state)
        now = aware("when", when)
        with self._write() as session:
            record = session.get(StrategyRecord, strategy_id)
            if record is None:
                raise RecordNotFoundError(f"strategy {strategy_id!r} is not in the store")
            record.state = new_state
            record.state_reason = reason
            record.updated_at = now
            return record

    def allocate_magic(self, strategy_id: str) -> int:
        """The magic number of ``strategy_id``: the stored one for a saved strategy, else the one
        ``save_strategy`` will give it (unique among saved strategies, in MAGIC_MIN..MAGIC_MAX)."""
        strategy_id = text("strategy_id", strategy_id)
        with self._read() as session:
            record = session.get(StrategyRecord, strategy_id)
            return record.magic if record is not None else _free_magic(session, strategy_id)


def _free_magic(session: Session, strategy_id: str) -> int:
    # Linear probing from the preferred number; a collision needs two ids among 2^31 numbers.
    candidate = preferred_magic(strategy_id)
    while True:
        holder = session.exec(select(StrategyRecord.id).where(StrategyRecord.magic == candidate)).first()
        if holder is None or holder == strategy_id:
            return candidate
        candidate = MAGIC_MIN if candidate == MAGIC_MAX else candidate + 1
