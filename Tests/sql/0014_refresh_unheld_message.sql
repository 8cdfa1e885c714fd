-- Finishing a job that is not held says which state the job is really in.
BEGIN;
SELECT plan(3);

SELECT refresh.queue_refreshes('quote', ARRAY['NEVER', 'LAPSED'], 0);
SELECT throws_ok(
    format('SELECT refresh.complete_queue_job(%s, 1, %L)',
           (SELECT id FROM refresh.api_call_queue WHERE symbol = 'NEVER'), gen_random_uuid()),
    '55000', NULL, 'a job never claimed cannot be finished');
SELECT throws_like(
    format('SELECT refresh.complete_queue_job(%s, 1, %L)',
           (SELECT id FROM refresh.api_call_queue WHERE symbol = 'NEVER'), gen_random_uuid()),
    '%was never claimed, so no lease%', 'and it says it was never claimed, not that a lease expired');

CREATE TEMP TABLE claimed AS SELECT id, lease_token FROM refresh.get_queue_batch('slow-worker', 10) WHERE symbol = 'LAPSED';
-- The worker stalls past its lease.
UPDATE refresh.api_call_queue SET claimed_at = claimed_at - interval '1 hour' WHERE id = (SELECT id FROM claimed);
SELECT refresh.recover_stuck_jobs(interval '1 minute');
SELECT throws_like(
    format('SELECT refresh.complete_queue_job(%s, 1, %L)', (SELECT id FROM claimed), (SELECT lease_token FROM claimed)),
    '%is pending again: the lease % expired after 1 attempt(s)%', 'a lapsed lease is called that');

SELECT * FROM finish();
ROLLBACK;
