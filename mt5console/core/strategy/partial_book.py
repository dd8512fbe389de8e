"""The partial-exit plans of one strategy's open positions, kept on disk as they change.

A plan (partials.PartialPlan) is made when a position opens and says which levels have fired. Held
only in memory it was lost by a restart or a replace: the position then never took its partial exits,
or, rebuilt from nothing, could take a level a second time. So every change is written to the store
before it is carried out: a crash between the two leaves a level marked fired but not done (its stop
and target still protect the position) rather than a level closed twice.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from datetime import datetime
from typing import Any, Protocol

from mt5console.core.broker.models import SymbolSpec
from mt5console.core.events import EventBus
from mt5console.core.strategy.partials import PartialPlan, PartialPlanError


class PlanStore(Protocol):
    """What of the Store the book uses (store/partial_plans.py)."""

    def save_partial_plan(
        self, ticket: int, strategy_id: str, state: Mapping[str, Any], when: datetime | None = None
    ) -> None: ...

    def partial_plans(self, strategy_id: str) -> dict[int, dict[str, Any]]: ...

    def drop_partial_plans(self, tickets: list[int] | tuple[int, ...] | set[int]) -> None: ...


class PartialBook:
    """Plans by position ticket; ``store`` None keeps them in memory only (a test's runner)."""

    def __init__(self, strategy_id: str, spec: SymbolSpec, store: PlanStore | None, events: EventBus) -> None:
        self._strategy_id = strategy_id
        self._spec = spec
        self._store = store
        self._events = events
        self._plans: dict[int, PartialPlan] = {}

    def __bool__(self) -> bool:
        return bool(self._plans)

    def tickets(self) -> list[int]:
        return list(self._plans)

    def get(self, ticket: int) -> PartialPlan | None:
        return self._plans.get(ticket)

    def resume(self) -> None:
        """Take back the plans saved for this strategy's positions (after a restart or a replace)."""
        if self._store is None:
            return
        unreadable: list[int] = []
        for ticket, state in self._store.partial_plans(self._strategy_id).items():
            try:
                self._plans[ticket] = PartialPlan.from_dict(state, self._spec)
            except PartialPlanError as error:
                unreadable.append(ticket)
                self._events.warning(
                    self._strategy_id,
                    f"the partial exits of #{ticket} cannot be resumed ({error}); its stop and target stay",
                )
        if unreadable:
            self._store.drop_partial_plans(unreadable)
        if self._plans:
            tickets = ", ".join(f"#{ticket}" for ticket in self._plans)
            self._events.info(self._strategy_id, f"resumed the partial exits of {tickets}")

    def keep(self, ticket: int, plan: PartialPlan) -> None:
        """Save ``plan`` (new, or changed by ``on_price``) before what it asks for is done."""
        self._plans[ticket] = plan
        if self._store is not None:
            self._store.save_partial_plan(ticket, self._strategy_id, plan.to_dict())

    def forget(self, tickets: Collection[int]) -> None:
        gone = [ticket for ticket in tickets if ticket in self._plans]
        for ticket in gone:
            del self._plans[ticket]
        if gone and self._store is not None:
            self._store.drop_partial_plans(gone)

    def forget_all_but(self, open_tickets: Collection[int]) -> None:
        """Drop the plans of positions no longer open (closed by their stop or target, or by hand)."""
        self.forget([ticket for ticket in self._plans if ticket not in open_tickets])
