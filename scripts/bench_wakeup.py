"""Insert-to-processed latency of the order queue with a listening processor.

A processor LISTENs on jobs_order_queue and drains the queue on each wake-up; a writer inserts
one order at a time. Prints the p50 and p95 of processed_at - created_at in milliseconds, then
the p50 of a bare NOTIFY round trip measured the same way, as the floor. With a third argument,
`external`, no processor is started here: one already runs (freshet-server).
"""
import statistics
import sys
import threading
import time

import psycopg

conninfo, count = sys.argv[1], int(sys.argv[2])
external = len(sys.argv) > 3 and sys.argv[3] == "external"


def percentile(values, fraction):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def processor(stop):
    with psycopg.connect(conninfo, autocommit=True) as connection:
        connection.execute("LISTEN jobs_order_queue")
        ready.set()
        while not stop.is_set():
            # Collect first: the notifies() generator holds the connection until it returns.
            if list(connection.notifies(timeout=0.2, stop_after=1)):
                while connection.execute("SELECT jobs.process_next_queue_order()").fetchone()[0] is not None:
                    pass


with psycopg.connect(conninfo, autocommit=True) as setup:
    setup.execute("TRUNCATE jobs.order_queue")
    setup.execute(
        "INSERT INTO jobs.issuers (ticker, name, current_price) VALUES ('WAKE', 'Wake', 1) ON CONFLICT DO NOTHING")
    setup.execute("INSERT INTO jobs.balances VALUES ('00000000-0000-0000-0000-00000000beef', 1e12) ON CONFLICT DO NOTHING")

ready = threading.Event()
stop = threading.Event()
worker = threading.Thread(target=processor, args=(stop,), daemon=True)
if external:
    ready.set()
else:
    worker.start()
if not ready.wait(timeout=30):
    sys.exit("the processor did not start listening")
with psycopg.connect(conninfo, autocommit=True) as writer:
    for _ in range(count):
        writer.execute("INSERT INTO jobs.order_queue (user_id, ticker, order_type, amount) "
                       "VALUES ('00000000-0000-0000-0000-00000000beef', 'WAKE', 'buy', 1)")
        time.sleep(0.01)
    deadline = time.time() + 30
    while writer.execute("SELECT count(*) FROM jobs.order_queue WHERE status = 'pending'").fetchone()[0] and time.time() < deadline:
        time.sleep(0.05)
    latencies = [row[0] for row in writer.execute(
        "SELECT extract(epoch FROM processed_at - created_at) * 1000 FROM jobs.order_queue WHERE status <> 'pending'")]
stop.set()
if not external:
    worker.join()

pings = []
with psycopg.connect(conninfo, autocommit=True) as listener, psycopg.connect(conninfo, autocommit=True) as sender:
    listener.execute("LISTEN bench_ping")
    for _ in range(min(count, 200)):
        started = time.perf_counter()
        sender.execute("NOTIFY bench_ping")
        if list(listener.notifies(timeout=5, stop_after=1)):
            pings.append((time.perf_counter() - started) * 1000)

if len(latencies) < count:
    sys.exit(f"only {len(latencies)} of {count} orders were processed")
print(f"{statistics.median(latencies):.1f} {percentile(latencies, 0.95):.1f} {statistics.median(pings):.2f}")
