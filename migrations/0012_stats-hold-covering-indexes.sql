-- Up Migration
-- Statistics at 10,000 calls a day over 3 years (issue 11).
--
-- Hold time: how long the caller was on hold, from the caller's channel (the one the
-- call-control core owns): FreeSWITCH's own total (variable_hold_accum_seconds on
-- CHANNEL_HANGUP_COMPLETE) or the CHANNEL_HOLD/CHANNEL_UNHOLD spans seen, whichever is
-- larger. On the caller's leg, and on the call (like talk_sec) so that reports read it from
-- the calls index below. NULL = not known (rows written before this column).
ALTER TABLE legs ADD COLUMN hold_sec integer CHECK (hold_sec >= 0);
ALTER TABLE calls ADD COLUMN hold_sec integer CHECK (hold_sec >= 0);

-- A day's report reads ~20,000 calls (the day and the repeat window before it) and their
-- legs. Through a plain btree on started_at every one of them is a heap fetch scattered
-- over the table; with the columns the reports read in the index itself it is an
-- index-only scan of a few hundred contiguous pages (closed days are all-visible after
-- autovacuum; today's pages are few and hot). Measured by bench/stats.ts.
DROP INDEX IF EXISTS calls_started_idx;
CREATE INDEX calls_started_idx ON calls (started_at)
  INCLUDE (uuid, direction, counted, outcome, caller, queue_id, agent_id, ended_at, csat, hold_sec);

DROP INDEX IF EXISTS legs_started_idx;
-- The people's legs only (the caller's leg is the call itself): talk time, time to answer,
-- offers per agent.
CREATE INDEX legs_started_idx ON legs (started_at)
  INCLUDE (call_uuid, employee_id, answered_at, ended_at) WHERE party <> 'caller';

-- Time in state per agent: the GiST span index of 0008, now carrying the row's columns so
-- the overlap search does not visit the heap either.
DROP INDEX IF EXISTS agent_presence_history_span_idx;
CREATE INDEX agent_presence_history_span_idx ON agent_presence_history USING gist (
  tstzrange(started_at, CASE WHEN ended_at IS NULL THEN NULL ELSE greatest(ended_at, started_at) END, '[]'))
  INCLUDE (employee_id, state, started_at, ended_at);

-- Down Migration
DROP INDEX IF EXISTS agent_presence_history_span_idx;
CREATE INDEX agent_presence_history_span_idx ON agent_presence_history USING gist (
  tstzrange(started_at, CASE WHEN ended_at IS NULL THEN NULL ELSE greatest(ended_at, started_at) END, '[]'));
DROP INDEX IF EXISTS legs_started_idx;
CREATE INDEX legs_started_idx ON legs (started_at);
DROP INDEX IF EXISTS calls_started_idx;
CREATE INDEX calls_started_idx ON calls (started_at);
ALTER TABLE legs DROP COLUMN IF EXISTS hold_sec;
ALTER TABLE calls DROP COLUMN IF EXISTS hold_sec;
