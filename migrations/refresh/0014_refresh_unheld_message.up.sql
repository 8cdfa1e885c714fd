-- The refusal of an unheld refresh job says which of its states is true: a job never claimed is
-- no longer told its lease expired.

CREATE OR REPLACE FUNCTION refresh.refuse_unheld_job(job_id bigint, lease_token uuid) RETURNS void
    LANGUAGE plpgsql
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    found_status text;
    found_attempts integer;
BEGIN
    SELECT q.status, q.attempts INTO found_status, found_attempts FROM refresh.api_call_queue q WHERE q.id = job_id;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'refresh job % does not exist', job_id USING ERRCODE = 'no_data_found';
    ELSIF found_status = 'processing' THEN
        RAISE EXCEPTION 'refresh job % is not held under lease %', job_id, coalesce(lease_token::text, 'NULL')
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = 'Another claim holds it (this lease expired and the job was claimed again, or the token is wrong): drop this result.';
    ELSIF found_status = 'pending' AND found_attempts = 0 THEN
        RAISE EXCEPTION 'refresh job % was never claimed, so no lease (% given) can finish it', job_id, coalesce(lease_token::text, 'NULL')
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = 'Claim jobs with refresh.get_queue_batch() and finish them with the lease_token it returns.';
    ELSIF found_status = 'pending' THEN
        RAISE EXCEPTION 'refresh job % is pending again: the lease % expired after % attempt(s) and the job was queued for another',
                job_id, coalesce(lease_token::text, 'NULL'), found_attempts
            USING ERRCODE = 'object_not_in_prerequisite_state', HINT = 'Drop this result; the job will run again.';
    ELSE
        RAISE EXCEPTION 'refresh job % is already %', job_id, found_status USING ERRCODE = 'object_not_in_prerequisite_state';
    END IF;
END;
$$;
COMMENT ON FUNCTION refresh.refuse_unheld_job(bigint, uuid) IS 'Raises the error that says why a job cannot be finished under the given lease token: unknown, never claimed, held under another lease, queued again after its lease expired, or already finished.';

