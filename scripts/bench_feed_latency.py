"""Commit-to-listener latency of the change feed's hints with many listeners.

A writer commits one single-row insert into the watched table bench.watched every 10 ms; N listeners
LISTEN on its channel. Each write sends exactly one hint, so the k-th hint a listener receives belongs
to the k-th write; its latency is the time from just before the writer sent the insert to the moment
the listener's socket had the hint. One more listener reads the change with feed.changes_since() on
each hint (hint plus read). Then the same with a bare NOTIFY as the baseline.

Prints: hint p50, hint p99, hint+read p50, hint+read p99, bare NOTIFY p50, bare NOTIFY p99 (ms).
"""
import select
import sys
import threading
import time

import psycopg

conninfo, listener_count, writes = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])


def percentile(values, fraction):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def listen_all(connections, expected, received, ready, done):
    """Records the arrival time of every notification on every connection until each has `expected`."""
    by_fd = {c.pgconn.socket: c for c in connections}
    ready.set()
    while not done.is_set():
        readable, _, _ = select.select(list(by_fd), [], [], 0.1)
        now = time.perf_counter()
        for fd in readable:
            pgconn = by_fd[fd].pgconn
            pgconn.consume_input()
            while pgconn.notifies() is not None:
                received[fd].append(now)
        if all(len(times) >= expected for times in received.values()):
            return


def read_on_hint(connection, channel, expected, arrivals, ready):
    """On each hint, reads the new changes; records when the read returned."""
    cursor = connection.execute("SELECT feed.current_cursor()").fetchone()[0]
    connection.execute(f"LISTEN {channel}")
    ready.set()
    while len(arrivals) < expected:
        # Collect first: the notifies() generator holds the connection until it returns.
        if list(connection.notifies(timeout=5, stop_after=1)):
            rows = connection.execute("SELECT change_cursor FROM feed.changes_since(%s)", [cursor]).fetchall()
            if rows:
                cursor = rows[-1][0]
                arrivals.extend([time.perf_counter()] * len(rows))


def measure(statement, channel, with_reader):
    connections = [psycopg.connect(conninfo, autocommit=True) for _ in range(listener_count)]
    for connection in connections:
        connection.execute(f"LISTEN {channel}")
    received = {c.pgconn.socket: [] for c in connections}
    ready, done = threading.Event(), threading.Event()
    worker = threading.Thread(target=listen_all, args=(connections, writes, received, ready, done), daemon=True)
    worker.start()
    reads, reader_ready = [], threading.Event()
    reader = None
    if with_reader:
        reader_connection = psycopg.connect(conninfo, autocommit=True)
        reader = threading.Thread(target=read_on_hint, args=(reader_connection, channel, writes, reads, reader_ready), daemon=True)
        reader.start()
        reader_ready.wait(30)
    ready.wait(30)
    sent = []
    with psycopg.connect(conninfo, autocommit=True) as writer:
        for _ in range(writes):
            sent.append(time.perf_counter())
            writer.execute(statement)
            time.sleep(0.01)
    worker.join(timeout=30)
    done.set()
    if reader:
        reader.join(timeout=30)
    latencies = [(arrival - start) * 1000 for times in received.values() for arrival, start in zip(times, sent)]
    if any(len(times) != writes for times in received.values()):
        sys.exit(f"a listener missed hints: {sorted(len(t) for t in received.values())[:3]} of {writes}")
    read_latencies = [(arrival - start) * 1000 for arrival, start in zip(reads, sent)]
    for connection in connections:
        connection.close()
    return latencies, read_latencies


hints, reads = measure("INSERT INTO bench.watched (user_id, status, qty, note) VALUES ('u1', 'open', 1, 'a short note')",
                       "feed_bench_watched", True)
if len(reads) != writes:
    sys.exit(f"the reading listener got {len(reads)} of {writes} changes")
pings, _ = measure("NOTIFY bench_ping, 'x'", "bench_ping", False)
print(" ".join(f"{value:.2f}" for value in (percentile(hints, 0.5), percentile(hints, 0.99), percentile(reads, 0.5),
                                              percentile(reads, 0.99), percentile(pings, 0.5), percentile(pings, 0.99))))
