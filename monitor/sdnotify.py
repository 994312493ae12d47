"""The systemd notify protocol (sd_notify(3)) in a few lines of stdlib; a no-op without systemd."""

from __future__ import annotations

import contextlib
import os
import socket
from collections.abc import Mapping


class Notifier:
    """Sends READY=1, STATUS=…, WATCHDOG=1 and STOPPING=1 datagrams to $NOTIFY_SOCKET."""

    def __init__(self, env: Mapping[str, str] | None = None) -> None:
        env = os.environ if env is None else env
        address = env.get("NOTIFY_SOCKET", "")
        if address.startswith("@"):
            address = "\0" + address[1:]  # abstract namespace
        self.address = address or None
        self.sock: socket.socket | None = None
        if self.address:
            self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        usec = env.get("WATCHDOG_USEC", "")
        pid = env.get("WATCHDOG_PID", "")
        enabled = usec.isdigit() and int(usec) > 0 and (not pid or pid == str(os.getpid()))
        # sd_watchdog_enabled(3): ping at half the timeout.
        self.watchdog_interval: float | None = int(usec) / 2e6 if enabled else None

    def send(self, *fields: str) -> None:
        if self.sock is None or self.address is None:
            return
        # systemd gone or socket full: never take the daemon down for a status line.
        with contextlib.suppress(OSError):
            self.sock.sendto("\n".join(fields).encode(), self.address)

    def ready(self, status: str = "") -> None:
        self.send("READY=1", *([f"STATUS={status}"] if status else []))

    def status(self, status: str) -> None:
        self.send(f"STATUS={status}")

    def watchdog(self) -> None:
        self.send("WATCHDOG=1")

    def stopping(self) -> None:
        self.send("STOPPING=1")

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
