"""The `Store` facade: one class over every concern of the store (see __init__.py)."""

from __future__ import annotations

from monitor.store.answers import Answers
from monitor.store.database import Database
from monitor.store.leases import Leases
from monitor.store.outbox import Outbox
from monitor.store.reading import Reader
from monitor.store.recording import Recorder


class Store(Leases, Recorder, Outbox, Reader, Answers, Database):
    """The database of one deployment: each concern's methods, one set of engines and one
    transaction discipline (`Database`) under all of them."""
