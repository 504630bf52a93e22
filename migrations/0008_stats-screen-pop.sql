-- Up Migration
-- Statistics and screen pop (issue 11). Sized for 10,000 calls a day over 3 years
-- (~11 M calls, ~20 M legs): every read of a report is a range scan over its period —
-- calls through calls_started_idx (existing), everything else through the indexes below —
-- joined by hash; nothing probes an index once per call (10,000 probes a day's report
-- cannot afford) and nothing scans a whole table.

-- The period's legs (talk time, time to answer, offers per agent). Legs are written in
-- time order, so the range is also physically clustered.
CREATE INDEX legs_started_idx ON legs (started_at);

-- Callbacks created / completed per period, and a client's (or unknown number's) open
-- callbacks on the screen pop.
CREATE INDEX callbacks_created_idx ON callbacks (created_at);
CREATE INDEX callbacks_done_idx ON callbacks (done_at) WHERE done_at IS NOT NULL;
CREATE INDEX callbacks_client_open_idx ON callbacks (client_id, created_at) WHERE state IN ('open', 'in_progress');
CREATE INDEX callbacks_phone_open_idx ON callbacks (phone, created_at) WHERE state IN ('open', 'in_progress');

-- Time in state per agent: the rows overlapping [from, to). A state can last days (an
-- agent not_ready over a weekend), so a btree on started_at cannot bound the scan; a GiST
-- index on the span can. An open row (ended_at NULL) is unbounded above. greatest() keeps
-- a row whose end precedes its start (clock step) a valid, empty-length range instead of
-- making the write fail. Queries must use exactly this expression.
CREATE INDEX agent_presence_history_span_idx ON agent_presence_history USING gist (
  tstzrange(started_at, CASE WHEN ended_at IS NULL THEN NULL ELSE greatest(ended_at, started_at) END, '[]'));

-- Down Migration
DROP INDEX IF EXISTS legs_started_idx, agent_presence_history_span_idx, callbacks_phone_open_idx, callbacks_client_open_idx,
  callbacks_done_idx, callbacks_created_idx;
