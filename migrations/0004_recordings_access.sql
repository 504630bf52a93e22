-- Up Migration
-- Recording access for QA and legal (issue 9): search columns + indexes, legal holds,
-- a hash-chained audit log appended under one lock.

-- 1. Search. The call facts QA filters on are copied onto the recording row by triggers,
--    so every typical filter is one index range scan in (filter, created_at, id) order
--    instead of a join that has to sort. The calls table stays the source of truth.
ALTER TABLE recordings
  ADD COLUMN direction  text,
  ADD COLUMN caller     text,
  ADD COLUMN callee     text,
  ADD COLUMN did        text,
  ADD COLUMN source_tag text,
  ADD COLUMN queue_id   text,
  ADD COLUMN outcome    text,
  ADD COLUMN csat       smallint,
  -- talk = time anybody talks (sum of channels minus overtalk), from the analysis jsonb
  ADD COLUMN talk_ms integer GENERATED ALWAYS AS (
    CASE WHEN metrics IS NULL THEN NULL ELSE round(
      coalesce((metrics #>> '{channels,0,talkMs}')::numeric, 0)
      + coalesce((metrics #>> '{channels,1,talkMs}')::numeric, 0)
      - coalesce((metrics ->> 'overtalkMs')::numeric, 0))::integer END) STORED,
  ADD COLUMN overtalk_ms integer GENERATED ALWAYS AS (round((metrics ->> 'overtalkMs')::numeric)::integer) STORED;
-- silence = duration - talk (computed in queries from the two columns)

CREATE FUNCTION recordings_copy_call_facts() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF NEW.call_uuid IS NULL THEN
    NEW.direction := NULL; NEW.caller := NULL; NEW.callee := NULL; NEW.did := NULL;
    NEW.source_tag := NULL; NEW.queue_id := NULL; NEW.outcome := NULL; NEW.csat := NULL;
  ELSE
    SELECT c.direction, c.caller, c.callee, c.did, c.source_tag, c.queue_id, c.outcome, c.csat
      INTO NEW.direction, NEW.caller, NEW.callee, NEW.did, NEW.source_tag, NEW.queue_id, NEW.outcome, NEW.csat
      FROM calls c WHERE c.uuid = NEW.call_uuid;
  END IF;
  -- a recording made for a call or client under an active legal hold is held from the start
  IF NOT NEW.legal_hold AND EXISTS (
      SELECT 1 FROM legal_holds h WHERE h.lifted_at IS NULL AND (
        (h.scope = 'call' AND h.target = NEW.call_uuid::text) OR (h.scope = 'client' AND h.target = NEW.client_id))) THEN
    NEW.legal_hold := true;
  END IF;
  RETURN NEW;
END $$;

CREATE FUNCTION calls_push_facts_to_recordings() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  UPDATE recordings SET direction = NEW.direction, caller = NEW.caller, callee = NEW.callee, did = NEW.did,
    source_tag = NEW.source_tag, queue_id = NEW.queue_id, outcome = NEW.outcome, csat = NEW.csat
  WHERE call_uuid = NEW.uuid;
  RETURN NULL;
END $$;

CREATE TRIGGER calls_push_facts AFTER UPDATE OF direction, caller, callee, did, source_tag, queue_id, outcome, csat ON calls
  FOR EACH ROW WHEN (OLD.direction IS DISTINCT FROM NEW.direction OR OLD.caller IS DISTINCT FROM NEW.caller
    OR OLD.callee IS DISTINCT FROM NEW.callee OR OLD.did IS DISTINCT FROM NEW.did OR OLD.source_tag IS DISTINCT FROM NEW.source_tag
    OR OLD.queue_id IS DISTINCT FROM NEW.queue_id OR OLD.outcome IS DISTINCT FROM NEW.outcome OR OLD.csat IS DISTINCT FROM NEW.csat)
  EXECUTE FUNCTION calls_push_facts_to_recordings();

-- 2. Legal holds: one row per hold; a recording is held while any active hold covers it.
CREATE TABLE legal_holds (
  id          bigserial PRIMARY KEY,
  scope       text NOT NULL CHECK (scope IN ('recording', 'call', 'client')),
  target      text NOT NULL,            -- recording id, call uuid or client id
  reason      text NOT NULL,
  case_ref    text NOT NULL,
  created_by  text NOT NULL,
  created_at  timestamptz NOT NULL DEFAULT now(),
  lifted_at   timestamptz,
  lifted_by   text,
  lift_reason text
);
CREATE INDEX legal_holds_active_idx ON legal_holds (scope, target) WHERE lifted_at IS NULL;
CREATE INDEX legal_holds_case_idx ON legal_holds (case_ref);

CREATE TRIGGER recordings_copy_call_facts BEFORE INSERT OR UPDATE OF call_uuid, client_id ON recordings
  FOR EACH ROW EXECUTE FUNCTION recordings_copy_call_facts();

UPDATE recordings r SET direction = c.direction, caller = c.caller, callee = c.callee, did = c.did,
  source_tag = c.source_tag, queue_id = c.queue_id, outcome = c.outcome, csat = c.csat
FROM calls c WHERE c.uuid = r.call_uuid;

-- Search indexes: (filter, created_at, id) so keyset pages in time-desc order are index scans.
DROP INDEX IF EXISTS recordings_client_idx;
CREATE INDEX recordings_client_idx ON recordings (client_id, created_at, id);
CREATE INDEX recordings_agent_idx ON recordings (agent_id, created_at, id);
CREATE INDEX recordings_queue_idx ON recordings (queue_id, created_at, id);
CREATE INDEX recordings_caller_idx ON recordings (caller, created_at, id);
CREATE INDEX recordings_callee_idx ON recordings (callee, created_at, id);
CREATE INDEX recordings_did_idx ON recordings (did, created_at, id);
CREATE INDEX recordings_source_idx ON recordings (source_tag, created_at, id);
CREATE INDEX recordings_outcome_idx ON recordings (outcome, created_at, id);
CREATE INDEX recordings_held_idx ON recordings (created_at, id) WHERE legal_hold;
CREATE INDEX recordings_call_created_idx ON recordings (call_uuid, created_at, id);
CREATE INDEX clients_name_prefix_idx ON clients (lower(name) text_pattern_ops, id);

-- 3. Audit chain. hash = sha256(prev_hash || canonical JSON of the entry), computed by the
--    application; appends are serialised by an advisory lock taken inside audit_append(),
--    and the head row lets verification notice a truncated tail.
CREATE TABLE audit_chain_head (
  one      boolean PRIMARY KEY DEFAULT true CHECK (one),
  last_id  bigint,
  hash     text,
  entries  bigint NOT NULL DEFAULT 0
);
INSERT INTO audit_chain_head (one) VALUES (true);
CREATE INDEX audit_log_actor_idx ON audit_log (actor, at);

CREATE FUNCTION audit_append(p_at timestamptz, p_actor text, p_action text, p_recording uuid, p_subject text,
                             p_ip text, p_details jsonb, p_body text) RETURNS TABLE (id bigint, hash text)
LANGUAGE plpgsql AS $$
DECLARE
  v_prev text;
  v_hash text;
  v_id bigint;
BEGIN
  PERFORM pg_advisory_xact_lock(7305482190417);
  SELECT coalesce(h.hash, repeat('0', 64)) INTO v_prev FROM audit_chain_head h;
  v_hash := encode(sha256(convert_to(v_prev || p_body, 'UTF8')), 'hex');
  INSERT INTO audit_log (at, actor, action, recording_id, subject, ip, details, prev_hash, hash)
    VALUES (p_at, p_actor, p_action, p_recording, p_subject, p_ip, p_details, v_prev, v_hash)
    RETURNING audit_log.id INTO v_id;
  UPDATE audit_chain_head SET last_id = v_id, hash = v_hash, entries = entries + 1;
  RETURN QUERY SELECT v_id, v_hash;
END $$;

-- Down Migration
DROP FUNCTION IF EXISTS audit_append(timestamptz, text, text, uuid, text, text, jsonb, text);
DROP TABLE IF EXISTS audit_chain_head;
DROP INDEX IF EXISTS audit_log_actor_idx, clients_name_prefix_idx, recordings_call_created_idx, recordings_held_idx,
  recordings_outcome_idx, recordings_source_idx, recordings_did_idx, recordings_callee_idx, recordings_caller_idx,
  recordings_queue_idx, recordings_agent_idx, recordings_client_idx;
CREATE INDEX recordings_client_idx ON recordings (client_id, created_at);
DROP TRIGGER IF EXISTS recordings_copy_call_facts ON recordings;
DROP TRIGGER IF EXISTS calls_push_facts ON calls;
DROP FUNCTION IF EXISTS calls_push_facts_to_recordings();
DROP FUNCTION IF EXISTS recordings_copy_call_facts();
DROP TABLE IF EXISTS legal_holds;
ALTER TABLE recordings DROP COLUMN IF EXISTS direction, DROP COLUMN IF EXISTS caller, DROP COLUMN IF EXISTS callee,
  DROP COLUMN IF EXISTS did, DROP COLUMN IF EXISTS source_tag, DROP COLUMN IF EXISTS queue_id, DROP COLUMN IF EXISTS outcome,
  DROP COLUMN IF EXISTS csat, DROP COLUMN IF EXISTS talk_ms, DROP COLUMN IF EXISTS overtalk_ms;
