"""Drain the outbox through apprise, one target at a time, with retries and no lost alerts.

An attempt is recorded before sending and the result after, so a crash in between leaves the
row in 'sending'; after a grace period it is sent again (at-least-once, with the same dedupe
key). apprise's combined result hides which target failed, so each row holds one target; a
result of None (nothing sent) counts as a failure.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from monitor import config as cfg
from monitor import history, messages, routing, targets, text, webhook
from monitor.board import AnswerNews
from monitor.models import Delivery
from monitor.store import Store
from monitor.text import readable
from monitor.wording import error_class

log = logging.getLogger("monitor.notify")
STALE_SENDING = timedelta(minutes=5)  # longer than any single apprise send
RETRY_CAP = timedelta(hours=1)
_HTML_SCHEMES = ("mailto", "mailtos", "email")


@dataclass(frozen=True)
class FlushResult:
    sent: int = 0  # messages sent (one may carry several changes of one event)
    retrying: int = 0
    failed: int = 0
    merged: int = 0  # groups kept without sending: an earlier message already told them


def _now() -> datetime:
    return datetime.now(UTC)


def channel_format(url: str) -> messages.Format:
    """E-mail gets HTML (apprise adds the plain-text alternative); chat channels Markdown;
    our webhook JSON."""
    if targets.is_webhook(url):
        return "json"
    return "html" if url.split(":", 1)[0].lower() in _HTML_SCHEMES else "markdown"


def send(url: str, message: messages.Message, *, secret: str | None = None,
         delivery: str = "", user_agent: str = cfg.USER_AGENT) -> tuple[bool, str]:
    """Send one message to one target; (success, error text naming the host)."""
    if targets.is_webhook(url):
        return webhook.post(url, message.body.encode("utf-8"), secret=secret,
                            event=message.kind, delivery=delivery, user_agent=user_agent)
    import apprise

    target = apprise.Apprise()
    if not target.add(url):
        return False, f"apprise cannot use this URL ({cfg.mask_url(url)})"
    limit = getattr(target[0], "body_maxlen", 30_000) or 30_000
    body = messages.trim(message.body, limit)
    fmt = apprise.NotifyFormat.HTML if message.format == "html" else apprise.NotifyFormat.MARKDOWN
    wanted = target[0].notify_format
    wanted = wanted[0] if isinstance(wanted, tuple) else wanted
    if fmt is apprise.NotifyFormat.MARKDOWN and wanted == apprise.NotifyFormat.TEXT:
        # apprise passes Markdown on to a plain-text target (json://, form://, ntfy://…) as
        # it is: say it in plain words, without `\-` escapes, `**`, or `[text](url)`.
        body, fmt = readable(body), apprise.NotifyFormat.TEXT
    with apprise.LogCapture(level=apprise.logging.WARNING) as captured:
        result = target.notify(title=message.title, body=body, body_format=fmt)
        errors = captured.getvalue().strip()
    if result is None or not bool(result):
        # apprise logs "<time> - WARNING - <what>"; keep every <what>, in order, once.
        said = list(dict.fromkeys(line.split(" - ", 2)[-1].strip()
                                  for line in errors.splitlines() if line.strip()))
        detail = "; ".join(said) or "apprise reported failure"
        return False, f"{error_class(detail)}: {detail}"[:500]
    return True, ""




def _view(store: Store, change_id: int) -> messages.ChangeView:
    d = history.change_detail(store, change_id)
    return messages.ChangeView(
        id=d.id, platform=d.platform, title=messages.page_name(d.platform, d.title, d.source),
        url=d.url, kind=d.kind,
        labels=d.labels, severity=d.severity, summary=d.summary, evidence=d.evidence,
        opt_out=d.opt_out, diff=d.diff, headline=d.headline, verdict=tuple(d.verdict or ()))


def render(store: Store, config: cfg.Config, row: Delivery, url: str) -> messages.Message:
    fmt = channel_format(url)
    settings = config.settings
    if fmt == "json":
        return _json_message(store, config, row)
    if row.kind == "change" and row.change_id is not None:
        return messages.render_change(_view(store, row.change_id), fmt, settings.base_url,
                                      templates_dir=settings.templates_dir)
    if row.kind == "alert" and row.source_alert_id is not None:
        alert, source = store.source_alert(row.source_alert_id)
        return messages.render_source_alert(alert.kind, source.platform, source.name,
                                            alert.failures, alert.error, fmt,
                                            templates_dir=settings.templates_dir)
    if row.kind == "answer" and row.payload:
        news = AnswerNews.from_dict(row.payload)
        return messages.render_answers(news, _view(store, news.change_id).title, fmt,
                                       settings.base_url, templates_dir=settings.templates_dir)
    if row.kind == "digest" and row.payload:
        views = [_view(store, cid) for cid in row.payload.get("changes", [])]
        return messages.render_digest(views, str(row.payload.get("period", "")), fmt,
                                      settings.base_url, templates_dir=settings.templates_dir)
    raise ValueError(f"delivery {row.id} has nothing to render ({row.kind})")


def _json_message(store: Store, config: cfg.Config, row: Delivery) -> messages.Message:
    base = config.settings.base_url
    if row.kind == "change" and row.change_id is not None:
        payload = webhook.change(store, row.change_id, base)
    elif row.kind == "alert" and row.source_alert_id is not None:
        alert, source = store.source_alert(row.source_alert_id)
        payload = webhook.source_alert(alert.kind, source.platform, source.name, alert.failures,
                                       alert.error)
    elif row.kind == "answer" and row.payload:
        payload = webhook.answer(AnswerNews.from_dict(row.payload), base)
    elif row.kind == "digest" and row.payload:
        payload = webhook.digest(store, list(row.payload.get("changes", [])),
                                 str(row.payload.get("period", "")), base)
    else:
        raise ValueError(f"delivery {row.id} has nothing to render ({row.kind})")
    return messages.Message(str(payload.get("headline") or payload["type"]),
                            webhook.body(payload).decode("utf-8"), "json", kind=payload["type"])


def retry_delay(attempts: int, base: float, rng: random.Random) -> timedelta:
    """Exponential backoff with "equal jitter" (AWS Architecture Blog: half the delay fixed,
    half random), capped at one hour: retries spread out but never come back at once."""
    ceiling = min(RETRY_CAP.total_seconds(), base * 2 ** max(attempts - 1, 0))
    return timedelta(seconds=rng.uniform(ceiling / 2, ceiling))


def flush(store: Store, config: cfg.Config, clock: Callable[[], datetime] = _now,
          rng: random.Random | None = None, limit: int = 200,
          wait: float | None = None) -> FlushResult:
    """One pass over due deliveries.

    Changes that belong to one event and are due for the same target go out as one message:
    the pages of an announcement together, each with its headline and evidence. A change of an
    event that already reached the target goes out as an update naming the event's earlier
    pages, if it brings a sentence no earlier message quoted; otherwise its row is kept as
    "merged" (the target was already told). No change is ever left without a row.

    Targets are sent independently, each on its own thread; `wait` bounds how long this call
    waits for them (None: until all are done). Sends still out go on in the background and
    record their own outcome.
    """
    rng = rng or random.Random()
    now = clock()
    stale = now - STALE_SENDING
    rows = store.due_deliveries(now, stale, limit)
    events = store.change_events([r.change_id for r in rows if r.kind == "change" and r.change_id])
    groups: dict[tuple[int | None, int, str, int], list[Delivery]] = {}
    for row in rows:
        event = events.get(row.change_id) if row.kind == "change" and row.change_id else None
        if event is not None and _is_webhook(config, row):
            event = None  # a program gets every change as its own resource, never a merge
        key = (event, row.id if event is None else 0, row.subscription, row.target)
        groups.setdefault(key, []).append(row)
    by_target: dict[tuple[str, int], list[tuple[int | None, list[Delivery]]]] = {}
    for (event, _, subscription, target), group in groups.items():
        by_target.setdefault((subscription, target), []).append((event, group))
    tally = {"sent": 0, "retrying": 0, "failed": 0, "merged": 0}
    lock = threading.Lock()

    def send_all(key: tuple[str, int], work: list[tuple[int | None, list[Delivery]]]) -> None:
        """One target's messages, in turn; each attempt bounded by delivery_timeout."""
        try:
            for event, group in work:
                if _STOP.is_set():
                    return
                claimed = [row for row in group if store.begin_attempt(row, clock(), stale)]
                if claimed:  # rows another sender took are theirs
                    outcome = _deliver(store, config, claimed, event, clock, rng)
                    with lock:
                        tally[outcome] += 1
        except Exception:  # the database or a bug: this target's rows are retried later
            log.exception("deliveries to %s #%d stopped", *key)
        finally:
            with _BUSY_LOCK:
                _BUSY.discard(key)

    # Each target on its own thread: a slow or hanging receiver delays no other. A target
    # whose earlier send is still out is left to it (its rows stay claimed until it ends).
    started = []
    for target_key, work in by_target.items():
        with _BUSY_LOCK:
            if target_key in _BUSY:
                continue
            _BUSY.add(target_key)
        thread = threading.Thread(target=send_all, args=(target_key, work), daemon=True,
                                  name=f"notify {target_key[0]}#{target_key[1]}")
        thread.start()
        started.append(thread)
    deadline = None if wait is None else time.monotonic() + wait
    for thread in started:
        while thread.is_alive() and not _STOP.is_set():
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                break
            thread.join(0.1 if left is None else min(0.1, left))
    with lock:
        return FlushResult(tally["sent"], tally["retrying"], tally["failed"], tally["merged"])


_BUSY: set[tuple[str, int]] = set()  # targets with a send in flight, in this process
_BUSY_LOCK = threading.Lock()
_STOP = threading.Event()  # set at shutdown: no new sends, and nobody waits for one


def stop() -> None:
    """Shutdown: flush returns at once and starts nothing; a send in flight is abandoned (its
    delivery stays in the outbox, claimed, and is tried again after a restart)."""
    _STOP.set()


def _is_webhook(config: cfg.Config, row: Delivery) -> bool:
    sub = config.subscription(row.subscription)
    return sub is not None and row.target < len(sub.url) and targets.is_webhook(sub.url[row.target])


def _deliver(store: Store, config: cfg.Config, rows: list[Delivery], event: int | None,
             clock: Callable[[], datetime], rng: random.Random) -> str:
    """Send one message for these rows (one target) and record the same outcome on each."""
    first = rows[0]
    ids = [row.id for row in rows]
    sub = config.subscription(first.subscription)
    if sub is None or first.target >= len(sub.url):
        for row_id in ids:
            store.finish_attempt(row_id, clock(), ok=False,
                                 error=f"subscription {first.subscription!r} no longer in the config")
        return "failed"
    url = sub.targets()[first.target]
    try:
        message = (render(store, config, first, url) if event is None
                   else _event_message(store, config, event, rows, url))
        if message is None:
            store.merge_deliveries(ids, clock(),
                                   "merged: an earlier message of this event quoted the same text")
            return "merged"
        ok, error = _within(config.settings.delivery_timeout, send, url, message,
                            secret=sub.secret_value(), delivery=first.dedupe_key,
                            user_agent=config.settings.user_agent)
    except Exception as exc:  # a broken template or plugin must not stop the queue
        log.exception("delivery %s could not be rendered or sent", first.id)
        ok, error = False, f"{type(exc).__name__}: {exc}"
    attempts = max(row.attempts for row in rows) + 1
    opened = store.target_result(
        first.subscription, first.target, cfg.mask_url(sub.url[first.target]), clock(), ok=ok,
        error=error or None, alert_after=timedelta(seconds=config.settings.target_failing_after))
    if opened:
        log.warning("alert target failing: %s #%d (%s) has failed for more than %s: %s",
                    first.subscription, first.target, cfg.mask_url(sub.url[first.target]),
                    timedelta(seconds=config.settings.target_failing_after), error)
    if ok:
        for row_id in ids:
            store.finish_attempt(row_id, clock(), ok=True)
        log.info("deliveries %s sent to %s (%s)", ids, first.subscription, cfg.mask_url(url))
        return "sent"
    if attempts >= config.settings.delivery_max_attempts:
        for row_id in ids:
            store.finish_attempt(row_id, clock(), ok=False, error=error)
        log.warning("deliveries %s failed for good after %d attempts: %s", ids, attempts, error)
        return "failed"
    retry_at = clock() + retry_delay(attempts, config.settings.delivery_retry_base, rng)
    for row_id in ids:
        store.finish_attempt(row_id, clock(), ok=False, error=error, retry_at=retry_at)
    log.info("deliveries %s attempt %d failed (%s); retry at %s", ids, attempts, error,
             retry_at.isoformat(timespec="seconds"))
    return "retrying"


def _within(deadline: float, func: Callable[..., tuple[bool, str]], *args: Any,
            **kwargs: Any) -> tuple[bool, str]:
    """One delivery attempt with a total deadline (connect and every byte): a receiver that
    trickles or hangs is a failed attempt, retried later, not a stuck sender. The send left
    behind ends with its own socket timeouts, on a daemon thread."""
    result: list[tuple[bool, str]] = []

    def run() -> None:
        try:
            result.append(func(*args, **kwargs))
        except Exception as exc:
            result.append((False, f"{type(exc).__name__}: {exc}"))

    thread = threading.Thread(target=run, daemon=True, name="notify send")
    thread.start()
    thread.join(deadline)
    if result:
        return result[0]
    with _BUSY_LOCK:
        _LEFT.append(thread)
    return False, f"timeout: the receiver did not take the message within {deadline:g}s"


_LEFT: list[threading.Thread] = []  # sends past their deadline, still talking to a receiver


def sends_left() -> bool:
    """Is a send past its deadline still out? (apprise's own worker threads would hold the
    interpreter's exit until the receiver lets go: the daemon then exits without waiting)."""
    with _BUSY_LOCK:
        return any(t.is_alive() for t in _LEFT) or bool(_BUSY)


def _evidence_keys(view: messages.ChangeView) -> set[tuple[str, str]]:
    """What a message told: each quoted sentence with the side it was on ("added" and later
    "removed" are two pieces of news)."""
    return {(side, text.key(e[side])) for e in view.evidence for side in ("new", "old")
            if e.get(side)}


def _event_message(store: Store, config: cfg.Config, event_id: int, rows: list[Delivery],
                   url: str) -> messages.Message | None:
    """The message for the due changes of one event; None when earlier messages of the event
    already quoted everything they say (the rows are then merged, not sent)."""
    first = rows[0]
    earlier_ids = [cid for cid in store.event_sent(event_id, first.subscription, first.target)
                   if cid not in {r.change_id for r in rows}]
    earlier = [_view(store, cid) for cid in earlier_ids]
    told: set[tuple[str, str]] = set().union(*(_evidence_keys(v) for v in earlier))
    views = {row.id: _view(store, row.change_id) for row in rows if row.change_id is not None}
    fresh = [row for row in rows if not earlier or not views[row.id].evidence
             or _evidence_keys(views[row.id]) - told]
    if not fresh:
        return None
    fmt = channel_format(url)
    settings = config.settings
    if len(rows) == 1 and not earlier:
        return messages.render_change(views[rows[0].id], fmt, settings.base_url,
                                      templates_dir=settings.templates_dir)
    event = store.event_info(event_id)
    also = [views[row.id] for row in rows if row not in fresh]
    return messages.render_event(
        [views[row.id] for row in fresh], also, earlier, event.platform, event.first_at, fmt,
        settings.base_url, templates_dir=settings.templates_dir)


def queue_digests(store: Store, config: cfg.Config, now: datetime | None = None,
                  mode: cfg.Mode | None = None) -> int:
    """Queue one digest per daily (or weekly) subscription with the period's matching changes."""
    now = now or _now()
    queued = 0
    for sub in config.subscriptions:
        if sub.mode is cfg.Mode.INSTANT or (mode is not None and sub.mode is not mode):
            continue
        span = timedelta(days=1 if sub.mode is cfg.Mode.DAILY else 7)
        period = (now.strftime("%Y-%m-%d") if sub.mode is cfg.Mode.DAILY
                  else f"week {now.strftime('%G-W%V')}")
        ids = [cid for cid, platform, source, labels, severity in store.changes_between(now - span, now)
               if routing.wants_change(sub, platform, source, labels, severity)]
        if not ids:
            continue
        outbox = [routing.Outgoing(sub.name, i) for i in range(len(sub.url))]
        queued += store.queue("digest", f"{sub.name}:{period}", outbox, now,
                              payload={"changes": ids, "period": period})
    return queued


def send_test(config: cfg.Config, sub: cfg.Subscription) -> list[tuple[str, bool, str]]:
    """A sample alert to every target of a subscription; (masked URL, ok, error) each."""
    from monitor.diff import compute

    sample = messages.ChangeView(
        id=0, platform="Example", title="Privacy Policy (test alert)", url="https://example.com/",
        kind="privacy_policy", labels=["ai_training", "opt_out"], severity="high",
        summary="AI training added, opt-out added",
        evidence=[{"label": "ai_training", "direction": "added", "severity": "high", "old": None,
                   "new": "We may use your posts to train generative AI models."}],
        opt_out=[{"type": "setting_path", "text": "Settings > Data privacy > AI training"}],
        diff=compute("We use data.\n", "We use data.\nWe may use your posts to train AI models.\n"))
    results = []
    for raw, url in zip(sub.url, sub.targets(), strict=True):
        fmt = channel_format(url)
        if fmt == "json":
            message = messages.Message("test", webhook.body(webhook.test()).decode(), "json",
                                       kind="test")
        else:
            message = messages.render_change(sample, fmt, config.settings.base_url,
                                             templates_dir=config.settings.templates_dir)
        ok, error = send(url, message, secret=sub.secret_value(), delivery=f"test:{sub.name}",
                         user_agent=config.settings.user_agent)
        results.append((cfg.mask_url(raw), ok, error))
    return results
