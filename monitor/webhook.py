"""The structured webhook: a change as JSON a receiving program can use, signed when asked.

apprise's json:// sends a title and a Markdown message; a program would have to parse prose.
`webhooks://host/path` (or `webhook://` for plain HTTP) POSTs the fields of the API's change
resource instead, documented by `schemas/webhook.schema.json`. With a subscription `secret`,
`X-Policy-Monitor-Signature: sha256=<hex HMAC-SHA256 of the body>` lets the receiver check it
came from us; `sent_at` inside the signed body lets it refuse replays.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import requests

from monitor import history
from monitor.board import AnswerNews
from monitor.board import path as board_path
from monitor.store import Store
from monitor.targets import webhook_endpoint
from monitor.wording import iso as _iso

VERSION = 1
SIGNATURE_HEADER = "X-Policy-Monitor-Signature"
TIMEOUT = (10.0, 30.0)  # connect, read


def _links(base_url: str, change_id: int) -> dict[str, str]:
    base = base_url.rstrip("/")
    return {"change": f"{base}/changes/{change_id}", "api": f"{base}/api/changes/{change_id}",
            "diff": f"{base}/api/changes/{change_id}/diff"}


def change(store: Store, change_id: int, base_url: str) -> dict[str, Any]:
    """One change as the API's change resource, plus its event's sibling pages and links."""
    d = history.change_detail(store, change_id)
    siblings: list[dict[str, Any]] = []
    if d.event_id is not None:
        siblings = [{"change_id": c.id, "source": c.source, "platform": c.platform,
                     "severity": c.severity, "summary": c.summary, "headline": c.headline,
                     "detected_at": _iso(c.detected_at), "link": _links(base_url, c.id)["change"]}
                    for c in history.changes(store, event_id=d.event_id, with_sentences=False)
                    if c.id != d.id]
    return {
        "type": "change", "version": VERSION, "id": d.id, "source": d.source,
        "platform": d.platform, "title": d.title or d.source, "kind": d.kind, "url": d.url,
        "detected_at": _iso(d.detected_at), "labels": list(d.labels), "severity": d.severity,
        "headline": d.headline, "verdict": list(d.verdict or ["no_change"]),
        "default": d.default or "n/a", "regions_excluded": list(d.regions_excluded or []),
        "directions": dict(d.directions),
        "evidence": [dict(e) for e in d.evidence], "opt_out": [dict(o) for o in d.opt_out],
        "words_added": d.diff.stats.words_added, "words_removed": d.diff.stats.words_removed,
        "anomaly": d.anomaly, "event_id": d.event_id, "event_pages": siblings,
        "links": _links(base_url, d.id),
    }


def source_alert(kind: str, platform: str, source: str, failures: int,
                 error: str | None) -> dict[str, Any]:
    return {"type": "source_alert", "version": VERSION, "alert": kind, "platform": platform,
            "source": source, "failures": failures, "error": error}


def answer(news: AnswerNews, base_url: str) -> dict[str, Any]:
    """A platform's board answers moved: what moved, the board after, and where to look."""
    base = base_url.rstrip("/")
    path = board_path(news.platform)
    return {"type": "answer_change", "version": VERSION, **news.to_dict(),
            "links": {"change": f"{base}/changes/{news.change_id}", "board": base + path,
                      "api": f"{base}/api{path}"}}


def digest(store: Store, change_ids: list[int], period: str, base_url: str) -> dict[str, Any]:
    return {"type": "digest", "version": VERSION, "period": period,
            "changes": [change(store, cid, base_url) for cid in change_ids]}


def test() -> dict[str, Any]:
    """What `notify test` sends a webhook: proof the endpoint and its secret work."""
    return {"type": "test", "version": VERSION,
            "message": "A test from Policy Monitor: this webhook will receive changes as JSON."}


def body(payload: dict[str, Any], now: datetime | None = None) -> bytes:
    return json.dumps({**payload, "sent_at": _iso(now or datetime.now(UTC))},
                      ensure_ascii=False, sort_keys=True).encode("utf-8")


def signature(secret: str, data: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode("utf-8"), data, hashlib.sha256).hexdigest()


def post(url: str, data: bytes, *, secret: str | None, event: str, delivery: str,
         user_agent: str) -> tuple[bool, str]:
    """POST once; (success, what went wrong naming the host). No redirects: a webhook that
    moved is a configuration to fix, not a place to send signed payloads blindly."""
    endpoint = webhook_endpoint(url)
    host = urlsplit(endpoint).hostname or "?"
    headers = {"Content-Type": "application/json", "User-Agent": user_agent,
               "X-Policy-Monitor-Event": event, "X-Policy-Monitor-Delivery": delivery}
    if secret:
        headers[SIGNATURE_HEADER] = signature(secret, data)
    try:
        response = requests.post(endpoint, data=data, headers=headers, timeout=TIMEOUT,
                                 allow_redirects=False)
    except requests.Timeout:
        return False, f"timeout: {host} did not answer within {TIMEOUT[1]:g}s"
    except requests.ConnectionError as exc:
        why = "refused" if "refused" in str(exc).lower() else "unreachable"
        return False, f"connection error: cannot reach {host} ({why})"
    except requests.RequestException as exc:
        return False, f"request error to {host}: {type(exc).__name__}"
    with response:
        if 200 <= response.status_code < 300:
            return True, ""
        return False, f"HTTP {response.status_code} from {host}"
