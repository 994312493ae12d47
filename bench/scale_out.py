"""Several daemons on one PostgreSQL, at scale, judged by the origin servers' request log.

    python bench/scale_out.py [--sources 100000] [--hosts 2500] [--interval 3600]
                              [--processes 1] [--seconds 120] [--skew 0] [--kill]
                              [--watchlist import|toml]
    python bench/scale_out.py --sources 1000000 --interval 86400 --processes 2 --seconds 300

Starts a throwaway PostgreSQL on loopback (with pg_stat_statements), serves small policy pages
from one asyncio process listening on 127.0.H.H for every host, writes a sources.toml, times
`policy-monitor init`, spreads the first checks over one interval (the steady state of a
daemon that has run for a while), starts N `policy-monitor run` processes (the first one with
its clock `--skew` seconds ahead, through libfaketime; `--kill` SIGKILLs the last one a third
of the way in) and prints, from the request log: checks/s against what the schedule asks,
lag p50/p99, double checks, host-gap violations, PostgreSQL CPU per check, the claim
query's mean time, and with `--kill` how long the killed process's sources took to come back.
The watch list is imported from a CSV (`sources import`, the default) or written into
sources.toml (`--watchlist toml`); each daemon's peak RSS and the time until it was ready to
claim are printed, with the database's size per source.
"""

from __future__ import annotations

import argparse
import asyncio
import glob
import itertools
import multiprocessing
import os
import random
import re
import resource
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
TICKS = os.sysconf("SC_CLK_TCK")

from tests.pgserver import create_database, throwaway_postgres  # noqa: E402


def host_address(h: int) -> str:
    return f"127.0.{h // 250}.{h % 250 + 1}"


def serve(hosts: int, port: int, log_path: str, ready: multiprocessing.Queue,
          delay: float = 0.0) -> None:
    """One process, one listening socket per host address, one log line per request."""
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    body = "".join(f"<h2>Section {i}</h2><p>We process data for purpose {i}. You may object at "
                   f"any time in your settings.</p>" for i in range(30))
    log = open(log_path, "a", buffering=1)  # noqa: SIM115 - open for the process's life

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            path = head.split(b"\r\n", 1)[0].split()[1].decode()
            log.write(f"{time.time():.4f} {writer.get_extra_info('sockname')[0]} {path}\n")
            if delay:
                await asyncio.sleep(delay)
            noise = f"{random.getrandbits(64):x}"
            page = (f"<html><head><script>var t='{noise}'</script></head><body><nav>{noise}</nav>"
                    f"<main><h1>Policy</h1>{body}</main></body></html>").encode()
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/html; charset=utf-8\r\n"
                         b"Connection: close\r\nContent-Length: %d\r\n\r\n" % len(page) + page)
            await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, IndexError):
            pass
        finally:
            writer.close()

    async def main() -> None:
        for h in range(hosts):
            await asyncio.start_server(handle, host_address(h), port, backlog=64)
        ready.put(True)
        await asyncio.Event().wait()

    asyncio.run(main())


def postgres_cpu() -> float:
    """CPU seconds used so far by the (throwaway) PostgreSQL: every live postgres process,
    plus, on the postmaster, the CPU of its children that have exited (cutime, cstime), so
    backends of closed connections still count."""
    procs: dict[int, tuple[int, list[str]]] = {}
    for stat in glob.glob("/proc/[0-9]*/stat"):
        try:
            text = Path(stat).read_text()
        except OSError:
            continue
        if text[text.index("(") + 1:text.rindex(")")].startswith("postgres"):
            fields = text.rsplit(")", 1)[1].split()
            procs[int(stat.split("/")[2])] = (int(fields[1]), fields)
    total = 0
    for ppid, fields in procs.values():
        total += int(fields[11]) + int(fields[12])
        if ppid not in procs:  # the postmaster: add its reaped children
            total += int(fields[13]) + int(fields[14])
    return total / TICKS


def proc_cpu(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / TICKS


def peak_rss(pid: int) -> float:
    """The process's peak resident memory (VmHWM), in bytes."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return float(line.split()[1]) * 1024
    except OSError:
        pass
    return 0.0


def read_log(path: Path) -> list[tuple[float, str, str]]:
    rows = []
    for line in path.read_text().splitlines():
        t, host, p = line.split(" ", 2)
        rows.append((float(t), host, p))
    return rows


def double_checks(log: list[tuple[float, str, str]], interval: float) -> int:
    """One page asked twice within half its interval: two processes checked it."""
    count = 0
    for _, group in itertools.groupby(sorted(log, key=lambda r: (r[2], r[0])), key=lambda r: r[2]):
        times = [t for t, _, _ in group]
        count += sum(1 for a, b in itertools.pairwise(times) if b - a < interval / 2)
    return count


def gap_violations(log: list[tuple[float, str, str]], gap: float) -> int:
    count = 0
    for _, group in itertools.groupby(sorted(log, key=lambda r: (r[1], r[0])), key=lambda r: r[1]):
        times = [t for t, _, _ in group]
        count += sum(1 for a, b in itertools.pairwise(times) if b - a < gap - 0.01)
    return count


def faketime_env(seconds: float) -> dict[str, str]:
    lib = glob.glob("/usr/lib/*/faketime/libfaketime.so.1")
    if not lib:
        sys.exit("--skew needs libfaketime (apt-get install faketime)")
    return {"LD_PRELOAD": lib[0], "FAKETIME": f"+{seconds:g}s", "FAKETIME_DONT_FAKE_MONOTONIC": "1"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sources", type=int, default=100_000)
    parser.add_argument("--hosts", type=int, default=2500)
    parser.add_argument("--interval", type=float, default=3600.0)
    parser.add_argument("--per-host-delay", type=float, default=5.0)
    parser.add_argument("--processes", type=int, default=1)
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=120.0)
    parser.add_argument("--warmup", type=float, default=30.0,
                        help="seconds for the daemons to start before the first check is due")
    parser.add_argument("--skew", type=float, default=0.0,
                        help="run the first process with its clock this many seconds ahead")
    parser.add_argument("--delay", type=float, default=0.0,
                        help="seconds each page takes to answer (so checks hold their leases)")
    parser.add_argument("--spread", choices=("host", "random"), default="host",
                        help="due times evenly over the interval per host (where a running "
                             "schedule settles; default) or at random (hosts' pages collide "
                             "within the polite gap, and wait for it)")
    parser.add_argument("--watchlist", choices=("import", "toml"), default="import",
                        help="the sources as an imported CSV list (default) or in sources.toml")
    parser.add_argument("--kill", action="store_true",
                        help="SIGKILL the last process a third of the way through")
    args = parser.parse_args()
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))

    tmp = Path(tempfile.mkdtemp(prefix="pm-scale-out-"))
    log_path = tmp / "requests.log"
    log_path.touch()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    ready: multiprocessing.Queue = multiprocessing.Queue()
    origin = multiprocessing.Process(target=serve, daemon=True,
                                     args=(args.hosts, port, str(log_path), ready, args.delay))
    origin.start()
    ready.get(timeout=120)

    with throwaway_postgres("-c shared_preload_libraries=pg_stat_statements "
                            "-c pg_stat_statements.track_utility=on -c max_connections=300") as server:
        url = create_database(server, "scale")
        import sqlalchemy as sa

        engine = sa.create_engine(url)
        config = tmp / "sources.toml"
        lines = ["[settings]", f'database_url = "{url}"', f'data_dir = "{tmp}"',
                 "allow_private_addresses = true", f'interval = "{args.interval:g}s"',
                 'jitter = "0s"', f'per_host_delay = "{args.per_host_delay:g}s"',
                 f"workers = {args.workers}", ""]
        listed = tmp / "sites.csv"
        if args.watchlist == "toml":
            for i in range(args.sources):
                lines += ["[[source]]", f'name = "bench/s{i}"', 'platform = "Bench"',
                          f'url = "http://{host_address(i % args.hosts)}:{port}/p{i}"',
                          'select = "main"', ""]
        else:
            with listed.open("w") as fh:
                fh.write("name,platform,url,select\n")
                for i in range(args.sources):
                    fh.write(f"bench/s{i},Bench,http://{host_address(i % args.hosts)}:{port}/p{i},"
                             "main\n")
        config.write_text("\n".join(lines))
        cli = [sys.executable, "-m", "monitor", "--config", str(config)]
        t = time.perf_counter()
        subprocess.run([*cli, "init"], check=True, cwd=ROOT, capture_output=True)
        if args.watchlist == "import":
            subprocess.run([*cli, "sources", "import", str(listed), "--list", "bench"],
                           check=True, cwd=ROOT, capture_output=True)
        init_s = time.perf_counter() - t

        # The steady state of a daemon that has run for a while: every page has its first
        # version (one real check, then copied, as all pages show one text) and due times
        # are spread over one interval, starting once the daemons are up.
        subprocess.run([*cli, "check", "bench/s0"], check=True, cwd=ROOT, capture_output=True)
        from monitor.store import Store, refresh_hosts

        store = Store(url)
        # The first checks fall due `warmup` seconds after the daemons start, however long
        # this set-up takes (minutes at a million): due times are written from a base far
        # enough ahead, and the daemons start `warmup` before it.
        setup_start = time.time()
        lead = args.warmup + 60 + args.sources / 4000
        with store.write_conn() as conn:
            conn.execute(sa.text(
                "INSERT INTO snapshots (source_id, generation, sha256, text_blob, raw_blob, "
                "content_type, charset, url, text_size, raw_size, fetcher, first_seen_at, "
                "last_seen_at) SELECT s.id, s.generation, t.sha256, t.text_blob, t.raw_blob, "
                "t.content_type, t.charset, s.url, t.text_size, t.raw_size, t.fetcher, "
                "t.first_seen_at, t.last_seen_at FROM sources s, snapshots t "
                "WHERE t.source_id = (SELECT id FROM sources WHERE name = 'bench/s0') "
                "AND s.name <> 'bench/s0'"))
            conn.execute(sa.text(
                "UPDATE sources SET current_snapshot_id = snapshots.id, last_outcome = 'baseline', "
                "fingerprint = (SELECT fingerprint FROM sources WHERE name = 'bench/s0'), "
                "last_check_at = snapshots.first_seen_at FROM snapshots "
                "WHERE snapshots.source_id = sources.id AND sources.name <> 'bench/s0'"))
            # bench/s0 was just checked for real: its next check is one interval away, or the
            # request log would show it asked twice (a double check that no daemon made).
            if args.spread == "random":
                conn.execute(sa.text(
                    "UPDATE sources SET next_check_at = now() + make_interval(secs => "
                    "CASE WHEN name = 'bench/s0' THEN :interval ELSE :warm + random() * :interval "
                    "END)"), {"warm": lead, "interval": args.interval})
            else:
                # Where a running daemon's schedule settles: each next check is the last one's
                # actual time plus the interval, so a host's sources that once queued behind
                # its polite gap stay apart, evenly over the interval, each host shifted.
                conn.execute(sa.text(
                    "UPDATE sources s SET next_check_at = now() + make_interval("
                    "secs => CASE WHEN s.name = 'bench/s0' THEN :interval ELSE :warm + "
                    "(r.k + ((s.host_id * 0.6180339887)::numeric % 1)) * :interval / r.n END) "
                    "FROM (SELECT id, row_number() OVER (PARTITION BY host_id ORDER BY id) - 1 "
                    "AS k, count(*) OVER (PARTITION BY host_id) AS n FROM sources) r "
                    "WHERE r.id = s.id"), {"warm": lead, "interval": args.interval})
            refresh_hosts(conn, conn.execute(sa.text("SELECT id FROM hosts")).scalars())
        store.close()
        with engine.begin() as conn:
            conn.execute(sa.text("CREATE EXTENSION IF NOT EXISTS pg_stat_statements"))

        with engine.connect() as conn:
            db_bytes = conn.execute(sa.text("SELECT pg_database_size(current_database())")).scalar_one()
        early = setup_start + lead - args.warmup - time.time()
        if early < 0:
            print(f"set-up took {-early:.0f}s longer than planned: the first checks start late")
        time.sleep(max(0.0, early))
        daemons: list[subprocess.Popen[bytes]] = []
        logs: list[Path] = []
        started = time.monotonic()
        for n in range(args.processes):
            env = {**os.environ, **(faketime_env(args.skew) if args.skew and n == 0 else {})}
            logs.append(tmp / f"daemon{n}.log")
            daemons.append(subprocess.Popen([*cli, "run"], cwd=ROOT, env=env,
                                            stderr=logs[-1].open("w"), stdout=subprocess.DEVNULL))
        ready_after: dict[int, float] = {}
        while time.monotonic() - started < args.warmup:
            for n, p in enumerate(logs):
                if n not in ready_after and "running:" in p.read_text():
                    ready_after[n] = time.monotonic() - started
            time.sleep(0.1)
        with engine.begin() as conn:
            conn.execute(sa.text("SELECT pg_stat_statements_reset()"))
        sessions_sql = sa.text("SELECT sessions FROM pg_stat_database WHERE datname = current_database()")
        with engine.connect() as conn:
            sessions0 = conn.execute(sessions_sql).scalar_one()
        t0, cpu0 = time.time(), postgres_cpu()
        daemon0 = sum(proc_cpu(d.pid) for d in daemons)
        killed_at, victims = 0.0, set()
        if args.kill:
            time.sleep(args.seconds / 3)
            owner = f"{socket.gethostname()}:{daemons[-1].pid}"
            daemons[-1].kill()
            killed_at = time.time()
            # What it held when it died: its leases stay in the database until they lapse.
            with engine.connect() as conn:
                victims = {u.rsplit("/", 1)[1] for u in conn.execute(sa.text(
                    "SELECT url FROM sources WHERE lease_owner = :o"), {"o": owner}).scalars()}
            time.sleep(args.seconds * 2 / 3)
        else:
            time.sleep(args.seconds)
        t1, cpu1 = time.time(), postgres_cpu()
        daemon1 = sum(proc_cpu(d.pid) for d in daemons if d.poll() is None)
        peaks = [peak_rss(d.pid) for d in daemons]
        with engine.connect() as conn:
            top = conn.execute(sa.text(
                "SELECT calls, total_exec_time, left(regexp_replace(query, '\\s+', ' ', 'g'), 90) "
                "FROM pg_stat_statements ORDER BY total_exec_time DESC LIMIT 6")).all()
            # Every statement counts (BEGIN, COMMIT, pings too): per-statement overhead is
            # most of the server's CPU when each one executes in a tenth of a millisecond.
            sessions = conn.execute(sessions_sql).scalar_one() - sessions0 - 1
            statements = conn.execute(sa.text(
                "SELECT coalesce(sum(calls), 0) FROM pg_stat_statements")).scalar_one()
            frequent = conn.execute(sa.text(
                "SELECT calls, left(regexp_replace(query, '\\s+', ' ', 'g'), 90) "
                "FROM pg_stat_statements ORDER BY calls DESC LIMIT 12")).all()
            claim = conn.execute(sa.text(
                "SELECT coalesce(sum(calls), 0), coalesce(sum(total_exec_time), 0) "
                "FROM pg_stat_statements WHERE query LIKE '%FROM hosts%SKIP LOCKED%'")).one()
        for d in daemons:
            if d.poll() is None:
                d.send_signal(signal.SIGTERM)
        for d in daemons:
            d.wait(timeout=120)
        engine.dispose()
    origin.terminate()

    log = read_log(log_path)
    window = [r for r in log if t0 <= r[0] < t1]
    rate = len(window) / (t1 - t0)
    lags = sorted(float(m) for p in logs for m in re.findall(r"lag=([0-9.]+)s", p.read_text()))
    errors = sum(p.read_text().count("Traceback") for p in logs)
    print(f"{args.sources:,} sources on {args.hosts:,} loopback hosts, interval {args.interval:g}s, "
          f"per-host delay {args.per_host_delay:g}s, {args.processes} process(es) × "
          f"{args.workers} workers" + (f", first {args.skew:g}s ahead" if args.skew else "")
          + (", last one SIGKILLed" if args.kill else ""))
    print(f"init{' and import' if args.watchlist == 'import' else ''}: {init_s:.1f}s; database "
          f"{db_bytes / 1e6:.0f} MB, {db_bytes / args.sources:.0f} bytes per source "
          "(first versions included)")
    print("daemons: " + "; ".join(
        f"#{n} ready to claim after {ready_after[n]:.1f}s" if n in ready_after else
        f"#{n} not ready within {args.warmup:g}s" for n in range(len(daemons)))
          + "; peak RSS " + ", ".join(f"{p / 1e6:.0f} MB" for p in peaks))
    print(f"checks/s: {rate:.1f} (the schedule asks for {args.sources / args.interval:.1f}) "
          f"over {t1 - t0:.0f}s")
    if lags:
        p99 = lags[min(len(lags) - 1, int(len(lags) * 0.99))]
        print(f"lag: p50 {statistics.median(lags):.2f}s, p99 {p99:.2f}s over {len(lags)} checks")
    # A check the killed process had started but not finished is taken over: not a double.
    taken_over = {f"/{v}" for v in victims}
    print(f"double checks: {double_checks([r for r in log if r[2] not in taken_over], args.interval)}"
          f"; host-gap violations: "
          f"{gap_violations(log, args.per_host_delay)} (whole run, {len(log)} requests)")
    print(f"PostgreSQL CPU per check: {(cpu1 - cpu0) * 1000 / max(1, len(window)):.2f} ms; "
          f"daemons' CPU per check: {(daemon1 - daemon0) * 1000 / max(1, len(window)):.1f} ms"
          + (" (the killed one's not counted)" if args.kill else ""))
    calls, total = int(claim[0]), float(claim[1])
    print(f"claim query: {calls} calls, mean {total / max(1, calls):.2f} ms")
    if args.kill:
        back = [min((t for t, _, p in log if p == f"/{v}" and t > killed_at), default=None)
                for v in victims]
        waits = [b - killed_at for b in back if b is not None]
        print(f"killed process held {len(victims)} sources; re-checked {len(waits)} of them, "
              f"the last {max(waits, default=0):.1f}s after the kill")
    print("statements by server time per check:")
    per = max(1, len(window))
    for calls, total, query in top:
        print(f"  {float(total) / per:6.2f} ms  {int(calls) / per:5.1f}×  {query}")
    print(f"new server connections: {sessions} in {t1 - t0:.0f}s (each costs a backend start)")
    print(f"statements per check: {int(statements) / per:.1f}, the most frequent:")
    for calls, query in frequent:
        print(f"  {int(calls) / per:5.1f}×  {query}")
    print(f"tracebacks in daemon logs: {errors}; logs in {tmp}")


if __name__ == "__main__":
    main()
