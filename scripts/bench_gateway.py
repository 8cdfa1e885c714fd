"""Commit-to-delivery latency, throughput and memory of freshet-server's WebSocket gateway.

Usage: bench_gateway.py CONNINFO WS_URL TOKEN SERVER_PID WRITES
Connects 1,000 WebSocket clients (100 subscribed to bench.gw_hot, 900 to bench.gw_cold), then a
writer commits one row into bench.gw_hot every 10 ms, stamped with the time just before its insert;
each hot client records when the change arrived. Then four writers commit 10-row batches as fast as
they can for 5 s, and every client counts what it receives. The baseline reads the same stream
without the gateway: one psycopg connection LISTENs on the table's channel and reads
feed.changes_since() on each hint.

Prints one line: gateway p50, p99 over every delivery (ms); baseline p50, p99 (ms); delivered
messages per second; rows committed per second; server KiB per idle connection; deliveries measured;
p50, p99 of each change's first delivery (ms). The clients share one Python process, which reads
a change's 100 copies one after another: the first delivery shows the gateway's part.
"""
import asyncio
import json
import os
import sys
import threading
import time

import psycopg
import websockets

conninfo, ws_url, token, server_pid, writes = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
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


async def client(index, ready, latencies, counts):
    table = "bench.gw_hot" if index < HOT else "bench.gw_cold"
    async with websockets.connect(f"{ws_url}?access_token={token}", max_size=None, ping_interval=None) as socket:
        await socket.send(json.dumps({"type": "subscribe", "table": table, "client_id": f"bench-{os.getpid()}-{index}"}))
        while json.loads(await socket.recv())["type"] != "subscribed":
            pass
        ready.append(index)
        async for frame in socket:
            now = time.perf_counter()
            message = json.loads(frame)
            if message.get("type") == "db_change":
                counts[index] += 1
                if latencies is not None:
                    latencies.append((message["cursor"], now - message["data"]["sent_at"]))


async def main():
    base = baseline(writes)
    before = rss_kib()
    ready, latencies, counts = [], [], [0] * CLIENTS
    tasks = [asyncio.create_task(client(i, ready, latencies if i < HOT else None, counts)) for i in range(CLIENTS)]
    while len(ready) < CLIENTS:
        await asyncio.sleep(0.1)
    await asyncio.sleep(1)
    per_connection = (rss_kib() - before) / CLIENTS
    await asyncio.to_thread(paced_writer, writes)
    await asyncio.sleep(1)
    paced = list(latencies)
    latencies.clear()
    counts[:] = [0] * CLIENTS
    committed = []
    started = time.perf_counter()
    await asyncio.to_thread(saturating_writers, 5, committed)
    # Until deliveries stop: the rate counts the time the gateway took to deliver everything.
    last_total, last_change = -1, time.perf_counter()
    while time.perf_counter() - last_change < 0.5:
        if sum(counts) != last_total:
            last_total, last_change = sum(counts), time.perf_counter()
        await asyncio.sleep(0.05)
    elapsed = last_change - started
    delivered = sum(counts)
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    ms = lambda seconds: f"{seconds * 1000:.1f}"
    every = [latency for _, latency in paced]
    first = {}
    for cursor, latency in paced:
        first[cursor] = min(latency, first.get(cursor, latency))
    print(ms(percentile(every, 0.5)), ms(percentile(every, 0.99)), ms(percentile(base, 0.5)), ms(percentile(base, 0.99)),
          f"{delivered / elapsed:.0f}", f"{sum(committed) / 5:.0f}", f"{per_connection:.0f}", len(every),
          ms(percentile(list(first.values()), 0.5)), ms(percentile(list(first.values()), 0.99)))


asyncio.run(main())
