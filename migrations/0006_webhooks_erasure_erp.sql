-- Up Migration
-- Talking back to the CRM (issue 14) and the ERP export (issue 7): a durable webhook
-- outbox, server secrets shared by every node, erasure tombstones on clients, and the
-- daily CSV export ledger.

-- 1. Webhook outbox. One row per event (what happened, already enriched), one row per
--    (event, endpoint) delivery. Workers on any node claim due deliveries with
--    FOR UPDATE SKIP LOCKED and a lease (locked_until), POST outside any transaction,
--    then record the outcome; a node dying mid-POST only delays the delivery until its
--    lease runs out (at-least-once: receivers deduplicate on the delivery id).
CREATE TABLE webhook_events (
  id           uuid PRIMARY KEY,
  type         text NOT NULL,
  occurred_at  timestamptz NOT NULL,
  data         jsonb NOT NULL,
  created_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX webhook_events_created_idx ON webhook_events (created_at);

CREATE TABLE webhook_deliveries (
  id              uuid PRIMARY KEY,
  event_id        uuid NOT NULL REFERENCES webhook_events(id) ON DELETE CASCADE,
  endpoint_id     text NOT NULL,
  format          text NOT NULL DEFAULT 'switchboard' CHECK (format IN ('switchboard', 'erp')),
  state           text NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'delivered', 'dead')),
  attempts        integer NOT NULL DEFAULT 0,
  next_attempt_at timestamptz NOT NULL DEFAULT now(),
  locked_until    timestamptz,
  locked_by       text,
  last_status     integer,
  last_error      text,
  last_attempt_at timestamptz,
  delivered_at    timestamptz,
  dead_at         timestamptz,
  redelivered_by  text,
  created_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX webhook_deliveries_due_idx ON webhook_deliveries (next_attempt_at) WHERE state = 'pending';
CREATE INDEX webhook_deliveries_state_idx ON webhook_deliveries (state, created_at DESC, id);
CREATE INDEX webhook_deliveries_event_idx ON webhook_deliveries (event_id);

-- 2. Secrets generated once and shared by all nodes (e.g. the key signing short-lived
--    download links, unless the config names one).
CREATE TABLE switchboard_secrets (
  name        text PRIMARY KEY,
  value       text NOT NULL,
  created_at  timestamptz NOT NULL DEFAULT now()
);

-- 3. Right to erasure: a client whose card had to stay (recordings under legal hold still
--    point at it) keeps an id and this mark; everything personal is gone.
ALTER TABLE clients ADD COLUMN erased_at timestamptz;

-- 4. Talk time (from the person answering to hangup, IVR and ringing excluded) on the
--    CDR: the ERP's per-call record and the daily CSV report it (issue 7).
ALTER TABLE calls ADD COLUMN talk_sec integer;

-- 5. Daily ERP CSV: one row per exported local date (idempotent across nodes and restarts).
CREATE TABLE erp_daily_exports (
  day         date PRIMARY KEY,
  tz          text NOT NULL,
  file        text,
  rows        integer,
  bytes       bigint,
  sha256      text,
  node        text,
  state       text NOT NULL DEFAULT 'writing' CHECK (state IN ('writing', 'written')),
  started_at  timestamptz NOT NULL DEFAULT now(),
  written_at  timestamptz
);

-- Down Migration
DROP TABLE IF EXISTS erp_daily_exports;
ALTER TABLE calls DROP COLUMN IF EXISTS talk_sec;
ALTER TABLE clients DROP COLUMN IF EXISTS erased_at;
DROP TABLE IF EXISTS switchboard_secrets;
DROP TABLE IF EXISTS webhook_deliveries;
DROP TABLE IF EXISTS webhook_events;
