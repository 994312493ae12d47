"""Alert targets checked when the config is read, not when the first alert is due.

A typo in a Slack URL found at 3 a.m., when the alert it should carry is already late, is a
lost alert. Each target is parsed the way it will be sent (apprise for its URLs, our own
rules for webhooks) without sending anything; apprise is imported only here and in notify.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from urllib.parse import urlsplit

WEBHOOK_SCHEMES = {"webhook": "http", "webhooks": "https"}  # our JSON webhook, signed
_ENV_RE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


def is_webhook(url: str) -> bool:
    return url.split("://", 1)[0].lower() in WEBHOOK_SCHEMES


def webhook_endpoint(url: str) -> str:
    """`webhooks://host/path` → `https://host/path`: where the JSON is POSTed."""
    scheme, rest = url.split("://", 1)
    return f"{WEBHOOK_SCHEMES[scheme.lower()]}://{rest}"


def problem(url: str, env: Mapping[str, str]) -> str | None:
    """Why this target cannot be used, or None. A URL whose ${VARS} are not set here (secrets
    come from the service's environment) is checked for its scheme only."""
    unset = any(not env.get(m.group(1)) for m in _ENV_RE.finditer(url))
    filled = _ENV_RE.sub(lambda m: env.get(m.group(1)) or "x", url)
    scheme = filled.split("://", 1)[0].lower() if "://" in filled else ""
    if scheme in WEBHOOK_SCHEMES:
        parts = urlsplit(webhook_endpoint(filled))
        return None if parts.hostname else "a webhook needs a host (webhooks://host/path)"
    import apprise
    from apprise.manager_plugins import NotificationManager

    if not scheme or scheme not in NotificationManager().schemas():
        return (f"unknown scheme {scheme + '://' if scheme else '(none)'}; apprise knows e.g. "
                "mailtos://, slack://, discord://, json://; our JSON webhook is webhooks://")
    if unset:
        return None
    # apprise's own warnings are what the one line below says: keep them off the console
    apprise_log = logging.getLogger("apprise")
    propagates, apprise_log.propagate = apprise_log.propagate, False
    try:
        with apprise.LogCapture(level=logging.WARNING) as captured:
            plugin = apprise.Apprise.instantiate(filled)
            log = captured.getvalue()
    finally:
        apprise_log.propagate = propagates
    if plugin is not None:
        return None
    # apprise says why in warnings, and "Could not load X URL: <the URL>" last; never echo
    # the URL or a token it quotes back.
    said = [line.split(" - ", 2)[-1].strip() for line in log.splitlines() if " - " in line]
    reasons = [_SECRET_RE.sub("(…)", r).rstrip(".:") for r in said if "Could not load" not in r]
    loaded = next((r.split(":", 1)[0] for r in said if "Could not load" in r),
                  "apprise cannot use this URL")
    return "; ".join([*reasons, loaded[0].lower() + loaded[1:]])


_SECRET_RE = re.compile(r"\((?!None\))[^)]{4,}\)")
