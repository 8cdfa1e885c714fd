#!/usr/bin/env python3
"""Refresh-engine benchmarks for make bench: worker processes over libpq (psycopg), one job per call.

  throughput CONNINFO MODE WORKERS BATCH JOBS [together]
                                                 claim + complete rate, MODE refresh or bare; together
                                                 completes each claimed batch in one call
  subscribe CONNINFO COUNT                       p50/p95 subscription insert latency, prints "p50 p95" in ms
  soak CONNINFO WORKERS SECONDS                  per-minute rate and hot-partition dead tuples while pruning
"""
import multiprocessing as mp
import statistics
import sys
import time

import psycopg

CLAIM = {
    "refresh": "SELECT id, lease_token FROM refresh.get_queue_batch(%s, %s)",
    "bare": """UPDATE bench.bare_queue q SET status = 'processing', worker_id = %s, claimed_at = now(), attempts = attempts + 1
               WHERE id IN (SELECT id FROM bench.bare_queue WHERE status = 'pending' AND next_attempt_at <= now()
                            ORDER BY priority DESC, next_attempt_at, id LIMIT %s FOR UPDATE SKIP LOCKED)
               RETURNING id, worker_id""",
}
COMPLETE_ALL = {
    "refresh": "SELECT refresh.complete_queue_jobs(%s, %s, %s)",
    "bare": """UPDATE bench.bare_queue SET status = 'completed', finished_at = now(), actual_size = 2048
               WHERE id = ANY (%s) AND worker_id = %s AND status = 'processing'""",
}
COMPLETE = {
    "refresh": "SELECT refresh.complete_queue_job(%s, 2048, %s)",
    "bare": """UPDATE bench.bare_queue SET status = 'completed', finished_at = now(), actual_size = 2048
               WHERE id = %s AND worker_id = %s AND status = 'processing'""",
}


def work(conninfo, mode, worker, batch, start, done, target, deadline, buckets, together=False):
    """Claims and completes until `target` jobs are done or `deadline` passes; counts per-minute buckets.
    `together` completes a claimed batch in one call instead of one call per job."""
    with psycopg.connect(conninfo, autocommit=True) as connection:
        start.wait()
        began = time.monotonic()
        while done.value < target and time.monotonic() < deadline:
            # Each claim comes with its proof: Freshet's lease token, the bare queue's worker id.
            claimed = connection.execute(CLAIM[mode], (worker, batch), prepare=True).fetchall()
            ids = [row[0] for row in claimed]
            if not ids:
                time.sleep(0.002)
                continue
            if together:
                arguments = (ids, [2048] * len(ids), [row[1] for row in claimed]) if mode == "refresh" else (ids, worker)
                connection.execute(COMPLETE_ALL[mode], arguments, prepare=True)
            else:
                for job, proof in claimed:
                    connection.execute(COMPLETE[mode], (job, proof), prepare=True)
            with done.get_lock():
                done.value += len(ids)
            if buckets is not None:
                minute = int((time.monotonic() - began) // 60)
                if minute < len(buckets):
                    with buckets.get_lock():
                        buckets[minute] += len(ids)


def throughput(conninfo, mode, workers, batch, jobs, together):
    start = mp.Barrier(workers + 1)
    done = mp.Value("q", 0)
    deadline = time.monotonic() + 600
    processes = [mp.Process(target=work, args=(conninfo, mode, f"w{i}", batch, start, done, jobs, deadline, None, together))
                 for i in range(workers)]
    for process in processes:
        process.start()
    start.wait()
    began = time.monotonic()
    for process in processes:
        process.join()
    elapsed = time.monotonic() - began
    print(int(done.value / elapsed))


def subscribe(conninfo, count):
    latencies = []
    with psycopg.connect(conninfo, autocommit=True) as connection:
        run = int(time.time() * 1000)
        for n in range(count):
            began = time.perf_counter()
            connection.execute(
                "INSERT INTO refresh.subscriptions (client_id, symbol, data_types) VALUES (%s, %s, '{quote,profile,ratios-ttm}')",
                (f"bench-{run}", f"L{run}-{n}"), prepare=True)
            latencies.append((time.perf_counter() - began) * 1000)
    latencies.sort()
    print(f"{statistics.median(latencies):.3f} {latencies[int(len(latencies) * 0.95)]:.3f}")


def produce(conninfo, stop):
    """Keeps about 20,000 runnable jobs in the queue with fresh symbols."""
    with psycopg.connect(conninfo, autocommit=True) as connection:
        next_symbol = 0
        while not stop.is_set():
            pending = connection.execute("SELECT count(*) FROM refresh.api_call_queue_pending").fetchone()[0]
            if pending < 20000:
                connection.execute("SELECT refresh.queue_refreshes('quote', ARRAY(SELECT 'P' || n FROM generate_series(%s::integer, %s::integer) n), 0)",
                                   (next_symbol, next_symbol + 4999))
                next_symbol += 5000
            else:
                time.sleep(0.1)


def soak(conninfo, workers, seconds):
    minutes = max(1, seconds // 60)
    start = mp.Barrier(workers + 1)
    done = mp.Value("q", 0)
    buckets = mp.Array("q", minutes)
    stop = mp.Event()
    deadline = time.monotonic() + seconds
    producer = mp.Process(target=produce, args=(conninfo, stop))
    producer.start()
    time.sleep(2)
    processes = [mp.Process(target=work, args=(conninfo, "refresh", f"s{i}", 10, start, done, 1 << 62, deadline, buckets))
                 for i in range(workers)]
    for process in processes:
        process.start()
    start.wait()
    dead_max = {}
    prune_runs = 0
    with psycopg.connect(conninfo, autocommit=True) as connection:
        while time.monotonic() < deadline:
            report = connection.execute("SELECT refresh.maintain_queue_partitions()").fetchone()[0]
            prune_runs += 1
            for table, figures in (report.get("hot_partitions") or {}).items():
                dead_max[table] = max(dead_max.get(table, 0), figures["dead"])
            time.sleep(min(10, max(0, deadline - time.monotonic())))
        for process in processes:
            process.join()
        stop.set()
        producer.join()
        sizes = dict(connection.execute(
            """SELECT relname, pg_total_relation_size(relid) FROM pg_stat_user_tables
               WHERE schemaname = 'refresh' AND relname IN ('api_call_queue_pending', 'api_call_queue_processing', 'active_job_keys')""").fetchall())
    per_minute = list(buckets)
    first, last = per_minute[0], per_minute[-1]
    print(f"{first / 60:.0f} {last / 60:.0f} {last / max(first, 1):.2f} {done.value} {prune_runs} "
          f"{dead_max.get('api_call_queue_pending', 0)} {dead_max.get('api_call_queue_processing', 0)} {dead_max.get('active_job_keys', 0)} "
          f"{sizes.get('api_call_queue_pending', 0) // 1024} {sizes.get('api_call_queue_processing', 0) // 1024} "
          f"{' '.join(str(v // 60) for v in per_minute)}")


if __name__ == "__main__":
    command, conninfo = sys.argv[1], sys.argv[2]
    if command == "throughput":
        throughput(conninfo, sys.argv[3], int(sys.argv[4]), int(sys.argv[5]), int(sys.argv[6]), sys.argv[7:] == ["together"])
    elif command == "subscribe":
        subscribe(conninfo, int(sys.argv[3]))
    elif command == "soak":
        soak(conninfo, int(sys.argv[3]), int(sys.argv[4]))
    else:
        sys.exit(f"unknown command {command}")
