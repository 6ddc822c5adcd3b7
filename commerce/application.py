"""The commerce context's eventsourcing Application: one events table, one write lock."""

from __future__ import annotations

# Importing the domain registers every explicit event topic before anything is read back.
from commerce.domain import (  # noqa: F401
    accounts,
    creators,
    inventory,
    journeys,
    merchants,
    notes,
    orders,
    reviews,
)
from commerce.platform.replay import EventSourcedApplication


class Commerce(EventSourcedApplication):
    name = "Commerce"
