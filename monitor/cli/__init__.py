"""The commands. Thin: parse arguments, call the pipeline or a read view, print.

Errors the user can act on are one line on stderr and a non-zero exit status (78 for config
errors, so systemd does not restart into the same broken file); never a traceback unless -v.
The `policy-monitor` group and what every command shares are in base.py; the commands are in
one module per job, each registered on the group when it is imported here.
"""

from __future__ import annotations

from monitor.cli import alerts, boards, checks, imports, reading, setup, watchlists
from monitor.cli.base import entry, main, started

__all__ = ["alerts", "boards", "checks", "entry", "imports", "main", "reading", "setup", "started",
           "watchlists"]
