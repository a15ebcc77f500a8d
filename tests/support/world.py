"""A small seeded workspace for service tests: Ann and Bob (users), Carl (customer), item #1."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from services.api import PersonKind, Service
from services.clock import ManualClock

__all__ = ["World", "open_service", "seed"]


async def open_service(where: Path | str, *, clock: ManualClock | None = None) -> Service:
    """A Service on a data folder (SQLite) or on a database URL (`database_url`: each engine)."""
    if isinstance(where, Path):
        return await Service.open(data_dir=where, clock=clock or ManualClock())
    return await Service.open(url=where, clock=clock or ManualClock())


@dataclass(frozen=True)
class World:
    ann: int
    bob: int
    carl: int
    item: int


async def seed(service: Service, *, delay_s: int = 60) -> World:
    await service.set_config("unseen_delay_s", str(delay_s))
    ann = await service.add_person(email="ann@example.com", name="Ann Agent")
    bob = await service.add_person(email="bob@example.com", name="Bob Agent")
    carl = await service.add_person(
        email="carl@customer.org", name="Carl Customer", kind=PersonKind.CUSTOMER
    )
    item = await service.create_item(
        title="Printer on fire",
        followers=["ann@example.com", "bob@example.com", "carl@customer.org"],
    )
    return World(ann=ann.id, bob=bob.id, carl=carl.id, item=item.number)
