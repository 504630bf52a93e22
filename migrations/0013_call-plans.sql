-- Up Migration
-- Outbound call plans (issue 11, seeds 000 and 004): an admin uploads a list of clients to
-- call; the dialler works it progressively — one call per ready agent, agent first, then
-- the client — and every row keeps its outcome, attempts and the calls it made.
CREATE TABLE call_plans (
  id                 bigserial PRIMARY KEY,
  name               text NOT NULL,
  created_by         text,                       -- user id of the uploader
  status             text NOT NULL DEFAULT 'draft'
                     CHECK (status IN ('draft', 'running', 'paused', 'completed', 'cancelled')),
  -- who takes the calls when a row names nobody: exactly one of them, or none (rows must say)
  agent_id           text REFERENCES employees(id) ON DELETE SET NULL,
  queue_id           text,
  -- calling window of rows that give none
  window_start       timestamptz,
  window_end         timestamptz,
  max_attempts       integer NOT NULL CHECK (max_attempts BETWEEN 1 AND 50),
  retry_delay_sec    integer NOT NULL CHECK (retry_delay_sec BETWEEN 0 AND 604800),
  max_concurrent     integer CHECK (max_concurrent >= 1),   -- NULL: callPlans.maxConcurrentPerPlan
  caller_id          text,                       -- E.164 presented to clients; NULL: callerId rules
  rows_total         integer NOT NULL DEFAULT 0,
  rows_rejected      integer NOT NULL DEFAULT 0,
  created_at         timestamptz NOT NULL DEFAULT now(),
  started_at         timestamptz,
  completed_at       timestamptz,
  updated_at         timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX call_plans_running_idx ON call_plans (id) WHERE status = 'running';

CREATE TABLE call_plan_rows (
  id                 bigserial PRIMARY KEY,
  plan_id            bigint NOT NULL REFERENCES call_plans(id) ON DELETE CASCADE,
  line               integer NOT NULL,           -- line (CSV) or record number (JSON) in the upload
  client_id          text REFERENCES clients(id) ON DELETE SET NULL,
  phone_raw          text,                       -- as uploaded (rejected rows keep what was wrong)
  phone              text,                       -- E.164; NULL only for rejected rows
  agent_id           text REFERENCES employees(id) ON DELETE SET NULL,
  queue_id           text,
  window_start       timestamptz,
  window_end         timestamptz,
  note               text,
  status             text NOT NULL DEFAULT 'pending'
                     CHECK (status IN ('pending', 'dialling', 'answered', 'no_answer', 'busy', 'failed', 'rejected', 'cancelled', 'expired')),
  attempts           integer NOT NULL DEFAULT 0,
  next_attempt_at    timestamptz NOT NULL DEFAULT now(),
  call_id            uuid,                       -- the last call (calls.uuid once the agent answered)
  dialled_agent_id   text REFERENCES employees(id) ON DELETE SET NULL,  -- who took the last attempt
  outcome            text,                       -- last attempt: answered / busy / no_answer / failed / agent_no_answer / … ; rejected: the reason code
  last_cause         text,                       -- hangup cause, or the rejection message
  talk_sec           integer,
  claimed_by         text,                       -- node instance dialling it (status dialling)
  claimed_at         timestamptz,
  last_attempt_at    timestamptz,
  done_at            timestamptz
);
CREATE INDEX call_plan_rows_plan_idx ON call_plan_rows (plan_id, line);
-- Progress counts per plan (rows per status, attempts) from the index alone.
CREATE INDEX call_plan_rows_plan_status_idx ON call_plan_rows (plan_id, status) INCLUDE (attempts);
-- The dialler's scan: due rows of running plans, oldest first.
CREATE INDEX call_plan_rows_due_idx ON call_plan_rows (next_attempt_at, id) WHERE status = 'pending';
CREATE INDEX call_plan_rows_dialling_idx ON call_plan_rows (claimed_by) WHERE status = 'dialling';
-- One number once per plan (duplicates are rejected at upload; this keeps it true).
CREATE UNIQUE INDEX call_plan_rows_phone_uq ON call_plan_rows (plan_id, phone) WHERE phone IS NOT NULL AND status <> 'rejected';

CREATE TABLE call_plan_attempts (
  id           bigserial PRIMARY KEY,
  row_id       bigint NOT NULL REFERENCES call_plan_rows(id) ON DELETE CASCADE,
  call_uuid    uuid NOT NULL,
  agent_id     text REFERENCES employees(id) ON DELETE SET NULL,
  node         text,
  started_at   timestamptz NOT NULL DEFAULT now(),
  ended_at     timestamptz,
  outcome      text,
  cause        text,
  talk_sec     integer
);
CREATE INDEX call_plan_attempts_row_idx ON call_plan_attempts (row_id, started_at);
CREATE INDEX call_plan_attempts_call_idx ON call_plan_attempts (call_uuid);

-- Down Migration
DROP TABLE IF EXISTS call_plan_attempts;
DROP TABLE IF EXISTS call_plan_rows;
DROP TABLE IF EXISTS call_plans;
