"""Commit-to-delivery latency, throughput and memory of freshet-server's WebSocket gateway.

Usage: bench_gateway.py CONNINFO WS_URL TOKEN SERVER_PID WRITES WS_LOAD
WS_LOAD (scripts/ws_load.c, compiled) connects 1,000 WebSocket clients on one epoll loop, 100
subscribed to bench.gw_hot and 900 to bench.gw_cold. Then a writer commits one row into
bench.gw_hot every 10 ms, stamped with the time just before its insert, and each hot client records
when the change arrived. Then four writers commit 10-row batches as fast as they can for 5 s, and
every client counts what it receives. The baseline reads the same stream without the gateway: one
psycopg connection LISTENs on the table's channel and reads feed.changes_since() on each hint.

Prints one line: gateway p50, p99 over every delivery (ms); baseline p50, p99 (ms); delivered
messages per second; rows committed per second; server KiB per idle connection; deliveries measured;
p50, p99 of each change's first delivery (ms); clients closed with 4008 while the writers saturated
(the writers commit faster than a hundred copies of each change can be sent).
"""
import os
import subprocess
import sys
import threading
import time
from urllib.parse import urlsplit

import psycopg

conninfo, ws_url, token, server_pid, writes, ws_load = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5]), sys.argv[6]
CLIENTS, HOT = int(os.environ.get("GATEWAY_CLIENTS", 1000)), int(os.environ.get("GATEWAY_HOT", 100))


def percentile(values, fraction):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def rss_kib():
    with open(f"/proc/{server_pid}/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmRSS"))


def paced_writer(count):
    with psycopg.connect(conninfo, autocommit=True) as connection:
        for _ in range(count):
            connection.execute("INSERT INTO bench.gw_hot (sent_at) VALUES (%s)", [time.perf_counter()])
            time.sleep(0.01)


def saturating_writers(seconds, committed):
    def write():
        with psycopg.connect(conninfo, autocommit=True) as connection:
            deadline = time.perf_counter() + seconds
            while time.perf_counter() < deadline:
                connection.execute("INSERT INTO bench.gw_hot (sent_at) SELECT %s FROM generate_series(1, 10)", [time.perf_counter()])
                committed.append(10)
    threads = [threading.Thread(target=write) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def baseline(count):
    """The database's own path: LISTEN, then read the new changes on each hint."""
    latencies = []
    with psycopg.connect(conninfo, autocommit=True) as reader:
        cursor = reader.execute("SELECT feed.current_cursor()").fetchone()[0]
        channel = reader.execute("SELECT feed.channel_name('bench.gw_hot')").fetchone()[0]
        reader.execute(f'LISTEN "{channel}"')
        writer = threading.Thread(target=paced_writer, args=(count,))
        writer.start()
        while len(latencies) < count:
            if list(reader.notifies(timeout=5, stop_after=1)):
                rows = reader.execute("SELECT change_cursor, (row_data ->> 'sent_at')::float8 FROM feed.changes_since(%s)", [cursor]).fetchall()
                now = time.perf_counter()
                for change_cursor, sent_at in rows:
                    latencies.append(now - sent_at)
                    cursor = change_cursor
        writer.join()
    return latencies


def main():
    base = baseline(writes)
    before = rss_kib()
    url = urlsplit(ws_url)
    clients = subprocess.Popen([ws_load, url.hostname, str(url.port), f"{url.path}?access_token={token}", str(CLIENTS), str(HOT)],
                               stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)

    def command(line):
        clients.stdin.write(line + "\n")
        clients.stdin.flush()
        if line == "report":
            return clients.stdout.readline().split()

    if clients.stdout.readline().strip() != "ready":
        sys.exit("ws_load did not get its clients subscribed")
    time.sleep(1)
    per_connection = (rss_kib() - before) / CLIENTS
    command("start")
    paced_writer(writes)
    _, _, samples, p50, p99, first_p50, first_p99, closed = command("report")
    committed = []
    command("start")
    saturating_writers(5, committed)
    # The report waits until deliveries stop: the rate counts the time the gateway took to deliver everything.
    delivered, elapsed, _, _, _, _, _, closed_after = command("report")
    command("quit")
    clients.wait()
    if int(closed):
        sys.exit(f"the gateway closed {closed} clients while the writer was paced")
    if int(samples) != writes * HOT:
        sys.exit(f"the hot clients received {samples} changes, not {writes} each")
    print(p50, p99, f"{percentile(base, 0.5) * 1000:.1f}", f"{percentile(base, 0.99) * 1000:.1f}",
          f"{int(delivered) / float(elapsed):.0f}", f"{sum(committed) / 5:.0f}", f"{per_connection:.0f}", samples, first_p50, first_p99, closed_after)


main()
