"""Scheduling decisions with an injected clock: due, claimed once, polite, backed off."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from monitor import schedule
from monitor.config import Source
from monitor.store import Completion, LeaseLost, Store

T0 = datetime(2026, 1, 1, 12, tzinfo=UTC)


def test_backoff_doubles_and_caps_at_eight_intervals() -> None:
    assert [schedule.backoff_factor(n) for n in range(7)] == [1, 1, 2, 4, 8, 8, 8]
    rng = random.Random(1)
    nxt = schedule.next_check(T0, 3600, 0, 5, rng)
    assert nxt == T0 + timedelta(hours=8)


def test_jitter_is_bounded() -> None:
    rng = random.Random(3)
    for _ in range(100):
        delay = (schedule.next_check(T0, 60, 10, 0, rng) - T0).total_seconds()
        assert 60 <= delay <= 70


def test_first_checks_are_spread_within_ten_minutes() -> None:
    rng = random.Random(5)
    starts = [schedule.first_check(T0, 86400, rng) for _ in range(200)]
    assert all(T0 <= s <= T0 + timedelta(minutes=10) for s in starts)
    assert len({s.minute for s in starts}) > 5  # spread, not a burst


def test_host_gap_takes_the_largest_of_delay_crawl_delay_and_retry_after() -> None:
    assert schedule.host_next_allowed(T0, 5, None, None) == T0 + timedelta(seconds=5)
    assert schedule.host_next_allowed(T0, 5, 30, None) == T0 + timedelta(seconds=30)
    assert schedule.host_next_allowed(T0, 5, 30, 120) == T0 + timedelta(seconds=120)


@pytest.fixture
def store(tmp_path: Path):
    s = Store(f"sqlite:///{tmp_path / 's.db'}")
    s.upgrade()
    s.sync_sources([
        Source(name="a/1", platform="A", url="https://a.example/1"),
        Source(name="a/2", platform="A", url="https://a.example/2"),
        Source(name="b/1", platform="B", url="https://b.example/1"),
    ], default_interval=3600)
    s.schedule_new(T0 - timedelta(hours=1), random.Random(0), 3600)
    yield s
    s.close()


def test_one_source_per_free_host_and_never_twice(store: Store) -> None:
    first = store.claim("w1", T0, 10, 60)
    assert sorted(c.name[0] for c in first) == ["a", "b"]  # one per host
    assert store.claim("w2", T0, 10, 60) == []  # both hosts busy, claimed sources leased
    # The lease expires (a crashed worker): the work can be taken over.
    later = store.claim("w2", T0 + timedelta(seconds=61), 10, 60)
    assert {c.name for c in later} == {c.name for c in first}


def test_a_lost_lease_writes_nothing(store: Store) -> None:
    (claim,) = [c for c in store.claim("w1", T0, 10, 60) if c.name == "b/1"]
    store.claim("w2", T0 + timedelta(seconds=61), 10, 60)  # w2 took b/1 over
    state = store.state("b/1")
    done = Completion(T0 + timedelta(hours=1), T0 + timedelta(seconds=5), claim.token)
    from monitor.errors import FailureKind

    with pytest.raises(LeaseLost):
        store.record_failure(state, T0, 10, FailureKind.TRANSIENT, "timeout", done=done)
    # An unchanged page completes the check in the same UPDATE that records it: the lease
    # is held there too, for a 304 and for a 200 alike.
    with pytest.raises(LeaseLost):
        store.record_unchanged(state, T0, 10, 304, 0, None, None, None, done=done)
    with pytest.raises(LeaseLost):
        store.record_unchanged(state, T0, 10, 200, 10, '"e"', None, "fp", done=done)
    assert store.counts()["checks"] == 0
    assert store.state("b/1").etag is None  # nothing of the lost check was written


def test_completion_reschedules_and_frees_the_host_after_its_gap(store: Store) -> None:
    claims = {c.name: c for c in store.claim("w1", T0, 10, 60)}
    a = claims["a/1"] if "a/1" in claims else claims["a/2"]
    state = store.state(a.name)
    store.record_unchanged(state, T0, 10, 304, 0, None, None, None,
                           done=Completion(T0 + timedelta(hours=1), T0 + timedelta(seconds=5),
                                           a.token))
    other = "a/2" if a.name == "a/1" else "a/1"
    assert store.claim("w1", T0 + timedelta(seconds=4), 10, 60) == []  # host still resting
    (nxt,) = store.claim("w1", T0 + timedelta(seconds=5), 10, 60)
    assert nxt.name == other


def test_failing_is_recorded_once_and_recovery_once(store: Store) -> None:
    from sqlalchemy import select

    from monitor.errors import FailureKind
    from monitor.models import SourceAlert

    t = T0
    for _ in range(5):
        (claim,) = [c for c in store.claim("w", t, 10, 60) if c.name == "b/1"]
        store.record_failure(store.state("b/1"), t, 5, FailureKind.TRANSIENT, "HTTP 503",
                             done=Completion(t, t, claim.token, failure_threshold=3))
        t += timedelta(seconds=1)
    (claim,) = [c for c in store.claim("w", t, 10, 60) if c.name == "b/1"]
    store.record_unchanged(store.state("b/1"), t, 5, 304, 0, None, None, None,
                           done=Completion(t, t, claim.token, failure_threshold=3))
    with store.read() as s:
        alerts = [(a.kind, a.failures) for a in s.scalars(select(SourceAlert).order_by(SourceAlert.id))]
    assert alerts == [("failing", 3), ("recovered", 5)]


def test_transient_failures_climb_a_short_ladder_then_the_interval() -> None:
    rng = random.Random(7)
    ladder = schedule.RETRY_LADDER
    delays = [(schedule.next_check(T0, 6 * 3600, 300, n, rng, transient=True, ladder=ladder)
               - T0).total_seconds() for n in range(1, 7)]
    # 1 min, 5 min, 15 min, 1 h (each spread by at most a fifth), then back to the interval
    for delay, step in zip(delays, [60, 300, 900, 3600], strict=False):
        assert step <= delay <= step * 1.2
    assert all(6 * 3600 <= d <= 6 * 3600 + 300 for d in delays[4:])
    # a permanent failure backs off by intervals instead
    gone = schedule.next_check(T0, 6 * 3600, 0, 3, rng, transient=False, ladder=ladder)
    assert gone == T0 + timedelta(hours=24)
    # a ladder step never waits longer than the source's own interval
    short = schedule.next_check(T0, 120, 0, 3, rng, transient=True, ladder=ladder)
    assert short == T0 + timedelta(seconds=120)
