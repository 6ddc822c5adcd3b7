"""The live-shopping context's eventsourcing Application: its own events table and write lock."""

from __future__ import annotations

from commerce.platform.replay import EventSourcedApplication

# Importing the domain registers every explicit event topic before anything is read back.
from livestream.domain import deals, sessions  # noqa: F401


class Livestream(EventSourcedApplication):
    name = "Livestream"
