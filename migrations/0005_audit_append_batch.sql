-- Up Migration
-- Batched audit appends (issue 9, streaming target). audit_append() (0004) takes the chain's
-- advisory lock per entry and holds it until its transaction commits, so N concurrent
-- appends are N serialised commits (N WAL flushes) — 200 plays at once queued for ~0.6 s.
-- audit_append_batch() appends many entries under ONE lock and ONE commit: same chain,
-- same hashes (hash = sha256(prev_hash || body), body computed by the application),
-- entries linked in array order. audit_append() stays for single writers.

CREATE FUNCTION audit_append_batch(p_at timestamptz[], p_actor text[], p_action text[], p_recording uuid[], p_subject text[],
                                   p_ip text[], p_details jsonb[], p_body text[])
RETURNS TABLE (id bigint, hash text)
LANGUAGE plpgsql AS $$
DECLARE
  v_prev text;
  v_hash text;
  v_id bigint;
  v_n integer := coalesce(array_length(p_body, 1), 0);
  v_count bigint := 0;
BEGIN
  IF v_n = 0 THEN RETURN; END IF;
  IF array_length(p_at, 1) IS DISTINCT FROM v_n OR array_length(p_actor, 1) IS DISTINCT FROM v_n
     OR array_length(p_action, 1) IS DISTINCT FROM v_n OR array_length(p_recording, 1) IS DISTINCT FROM v_n
     OR array_length(p_subject, 1) IS DISTINCT FROM v_n OR array_length(p_ip, 1) IS DISTINCT FROM v_n
     OR array_length(p_details, 1) IS DISTINCT FROM v_n THEN
    RAISE EXCEPTION 'audit_append_batch: arrays of different lengths';
  END IF;
  PERFORM pg_advisory_xact_lock(7305482190417);
  SELECT coalesce(h.hash, repeat('0', 64)) INTO v_prev FROM audit_chain_head h;
  FOR i IN 1 .. v_n LOOP
    v_hash := encode(sha256(convert_to(v_prev || p_body[i], 'UTF8')), 'hex');
    INSERT INTO audit_log (at, actor, action, recording_id, subject, ip, details, prev_hash, hash)
      VALUES (p_at[i], p_actor[i], p_action[i], p_recording[i], p_subject[i], p_ip[i], p_details[i], v_prev, v_hash)
      RETURNING audit_log.id INTO v_id;
    id := v_id; hash := v_hash;
    RETURN NEXT;
    v_prev := v_hash;
    v_count := v_count + 1;
  END LOOP;
  UPDATE audit_chain_head SET last_id = v_id, hash = v_prev, entries = entries + v_count;
END $$;

-- Down Migration
DROP FUNCTION IF EXISTS audit_append_batch(timestamptz[], text[], text[], uuid[], text[], text[], jsonb[], text[]);
