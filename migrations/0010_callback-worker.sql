-- Up Migration
-- Callback worker (issue 6): each attempt is claimed atomically (FOR UPDATE SKIP LOCKED,
-- state → in_progress, claimed_by/claimed_at), dialled agent first then client, and
-- written down as a callback_attempts row linked to its call. A task is done only when
-- the client was reached; otherwise it reopens after the retry delay until maxAttempts.
ALTER TABLE callbacks
  ADD COLUMN outcome         text,          -- completed / no_answer / busy / too_short / agent_no_answer / invalid_number / …
  ADD COLUMN last_cause      text,          -- hangup cause of the last attempt
  ADD COLUMN last_call_uuid  uuid,
  ADD COLUMN last_attempt_at timestamptz,
  ADD COLUMN claimed_by      text,          -- node dialling it now (state in_progress)
  ADD COLUMN claimed_at      timestamptz;
CREATE INDEX callbacks_state_created_idx ON callbacks (state, created_at DESC);
CREATE INDEX callbacks_in_progress_idx ON callbacks (claimed_at) WHERE state = 'in_progress';

CREATE TABLE callback_attempts (
  id           bigserial PRIMARY KEY,
  callback_id  bigint NOT NULL REFERENCES callbacks(id) ON DELETE CASCADE,
  -- the call's uuid (calls row written once the employee answered; none if they did not)
  call_uuid    uuid NOT NULL,
  agent_id     text REFERENCES employees(id) ON DELETE SET NULL,
  node         text,
  started_at   timestamptz NOT NULL DEFAULT now(),
  ended_at     timestamptz,
  outcome      text,
  cause        text,
  talk_sec     integer
);
CREATE INDEX callback_attempts_callback_idx ON callback_attempts (callback_id, started_at);
CREATE INDEX callback_attempts_call_idx ON callback_attempts (call_uuid);

-- Down Migration
DROP TABLE IF EXISTS callback_attempts;
DROP INDEX IF EXISTS callbacks_in_progress_idx, callbacks_state_created_idx;
ALTER TABLE callbacks DROP COLUMN IF EXISTS claimed_at, DROP COLUMN IF EXISTS claimed_by, DROP COLUMN IF EXISTS last_attempt_at,
  DROP COLUMN IF EXISTS last_call_uuid, DROP COLUMN IF EXISTS last_cause, DROP COLUMN IF EXISTS outcome;
