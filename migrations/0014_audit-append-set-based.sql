-- Up Migration
-- audit_append_batch() as one set-based INSERT instead of one INSERT per entry in a
-- plpgsql loop. The chain is the same (hash = sha256(prev_hash || body), entries linked in
-- array order, under the same advisory lock): only the hashes are computed in the loop, the
-- rows then go in with one statement. Why: a QA console opening 200 recordings at once
-- appends 200 `play` entries, and the per-row INSERTs were the bulk of Postgres' CPU on a
-- 2-core host, delaying every other query of the moment (the recordings' row lookups).
CREATE OR REPLACE FUNCTION audit_append_batch(p_at timestamptz[], p_actor text[], p_action text[], p_recording uuid[], p_subject text[],
                                              p_ip text[], p_details jsonb[], p_body text[])
RETURNS TABLE (id bigint, hash text)
LANGUAGE plpgsql AS $$
DECLARE
  v_prev text;
  v_n integer := coalesce(array_length(p_body, 1), 0);
  v_hashes text[] := '{}';
  v_prevs text[] := '{}';
  v_ids bigint[];
  v_stored text[];
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
    v_prevs := v_prevs || v_prev;
    v_prev := encode(sha256(convert_to(v_prev || p_body[i], 'UTF8')), 'hex');
    v_hashes := v_hashes || v_prev;
  END LOOP;
  -- ids come from the sequence in the order the rows are inserted: ORDER BY n keeps the
  -- array order, so ids ascend along the chain as with the per-row version
  WITH ins AS (
    INSERT INTO audit_log (at, actor, action, recording_id, subject, ip, details, prev_hash, hash)
    SELECT u.at, u.actor, u.action, u.rec, u.subject, u.ip, u.details, u.prev, u.hash
      FROM unnest(p_at, p_actor, p_action, p_recording, p_subject, p_ip, p_details, v_prevs, v_hashes)
           WITH ORDINALITY AS u(at, actor, action, rec, subject, ip, details, prev, hash, n)
     ORDER BY u.n
    RETURNING audit_log.id, audit_log.hash
  )
  SELECT array_agg(ins.id ORDER BY ins.id), array_agg(ins.hash ORDER BY ins.id) INTO v_ids, v_stored FROM ins;
  -- the chain is walked by id: refuse (roll back) rather than store ids out of chain order
  IF v_stored IS DISTINCT FROM v_hashes THEN
    RAISE EXCEPTION 'audit_append_batch: ids out of chain order';
  END IF;
  UPDATE audit_chain_head SET last_id = v_ids[v_n], hash = v_prev, entries = entries + v_n;
  RETURN QUERY SELECT r.id, r.hash FROM unnest(v_ids, v_stored) AS r(id, hash);
END $$;

-- Down Migration
-- (0005's per-row version)
CREATE OR REPLACE FUNCTION audit_append_batch(p_at timestamptz[], p_actor text[], p_action text[], p_recording uuid[], p_subject text[],
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
