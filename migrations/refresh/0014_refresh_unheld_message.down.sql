-- Restores the message of 0011_refresh_hardening.

CREATE OR REPLACE FUNCTION refresh.refuse_unheld_job(job_id bigint, lease_token uuid) RETURNS void
    LANGUAGE plpgsql
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    found_status text;
BEGIN
    SELECT q.status INTO found_status FROM refresh.api_call_queue q WHERE q.id = job_id;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'refresh job % does not exist', job_id USING ERRCODE = 'no_data_found';
    ELSIF found_status = 'processing' THEN
        RAISE EXCEPTION 'refresh job % is not held under lease %', job_id, coalesce(lease_token::text, 'NULL')
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = 'Another claim holds it (this lease expired and the job was claimed again, or the token is wrong): drop this result.';
    ELSIF found_status = 'pending' THEN
        RAISE EXCEPTION 'refresh job % is pending, not held under lease %: it was never claimed with it, or its lease expired and it was queued again',
                job_id, coalesce(lease_token::text, 'NULL')
            USING ERRCODE = 'object_not_in_prerequisite_state', HINT = 'Drop this result; the job will run again.';
    ELSE
        RAISE EXCEPTION 'refresh job % is already %', job_id, found_status USING ERRCODE = 'object_not_in_prerequisite_state';
    END IF;
END;
$$;
COMMENT ON FUNCTION refresh.refuse_unheld_job(bigint, uuid) IS 'Raises the error that says why a job cannot be finished under the given lease token.';
