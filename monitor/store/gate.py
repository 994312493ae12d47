"""The gate before every write to a SQLite file, for both ways of writing (database.py and
lite.py): the file is the one this process opened, and it passed PRAGMA quick_check once, so
a damaged, deleted or replaced file is never written into."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from monitor.errors import StoreError


class FileGate:
    """Once `fatal` is set it stays set: writing stops for good (the daemon exits on it)."""

    def __init__(self, file: Path | None, quick_check: Callable[[], bool]) -> None:
        self.file = file
        self.quick_check = quick_check
        self.fatal: str | None = None
        self._identity: tuple[int, int] | None = None
        self._passed = False

    def check(self) -> None:
        if self.file is None:
            return
        if self.fatal:
            raise StoreError(self.fatal)
        try:
            st = os.stat(self.file)
        except FileNotFoundError:
            self.fatal = (f"the database {self.file} was deleted while this process was using "
                          "it; nothing more is written (restore it or run `policy-monitor init`)")
            raise StoreError(self.fatal) from None
        identity = (st.st_dev, st.st_ino)
        if self._identity is None:
            self._identity = identity
        elif identity != self._identity:
            self.fatal = (f"the database {self.file} was replaced by another file while this "
                          "process was using it; nothing more is written; restart to use the new one")
            raise StoreError(self.fatal)
        if not self._passed:
            if not self.quick_check():
                self.fatal = (f"the database {self.file} failed PRAGMA quick_check: nothing is "
                              "written into a damaged file (see README, Storage, to recover it)")
                raise StoreError(self.fatal)
            self._passed = True
