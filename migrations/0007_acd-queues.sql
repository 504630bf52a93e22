-- Up Migration
-- ACD (issue 6): the waiting list every Switchboard node shares, the nodes themselves
-- (heartbeats, so a crashed node's callers and agents are cleaned up by the others),
-- durable wrap-up, the log of every offer (who rang for which call, when, how it ended:
-- the evidence for "never two calls to one agent"), round-robin cursors and voicemails.

-- One row per running Switchboard process (name + random instance id).
CREATE TABLE acd_nodes (
  node_id       text PRIMARY KEY,
  heartbeat_at  timestamptz NOT NULL DEFAULT now(),
  started_at    timestamptz NOT NULL DEFAULT now()
);

-- queue_calls is the waiting list. A caller may wait while the CDR write is still
-- queued (Postgres blip), so no foreign key to calls.
ALTER TABLE queue_calls DROP CONSTRAINT IF EXISTS queue_calls_call_uuid_fkey;
ALTER TABLE queue_calls
  ADD COLUMN state          text NOT NULL DEFAULT 'waiting' CHECK (state IN ('waiting', 'offered', 'ringing')),
  ADD COLUMN client_id      text,
  ADD COLUMN caller         text,
  ADD COLUMN sticky_agent_id text,
  -- agents who did not take this call (no answer / busy): not offered it again while others are ready
  ADD COLUMN tried          text[] NOT NULL DEFAULT '{}',
  ADD COLUMN offer_id       bigint,
  ADD COLUMN offered_agents text[] NOT NULL DEFAULT '{}',
  ADD COLUMN offered_at     timestamptz,
  -- when the caller entered *this* queue (max wait); entered_at keeps the first queue's time (order)
  ADD COLUMN queue_entered_at timestamptz NOT NULL DEFAULT now();
DROP INDEX IF EXISTS queue_calls_order_idx;
CREATE INDEX queue_calls_order_idx ON queue_calls (priority DESC, entered_at) WHERE state = 'waiting';
CREATE INDEX queue_calls_queue_idx ON queue_calls (queue_id, state);
CREATE INDEX queue_calls_node_idx ON queue_calls (node);

-- Presence: the call an agent is on (or being offered), the node that claimed them, and
-- when wrap-up ends (any node's sweeper ends it, so a restart cannot leave it forever).
ALTER TABLE agent_presence
  ADD COLUMN call_uuid      uuid,
  ADD COLUMN claimed_by     text,
  ADD COLUMN wrap_up_until  timestamptz;
CREATE INDEX agent_presence_wrap_up_idx ON agent_presence (wrap_up_until) WHERE state = 'wrap_up';

CREATE SEQUENCE acd_offer_seq;

-- Every offer of a call to an agent (ring-all: one row per agent, same offer_id).
CREATE TABLE acd_offers (
  id           bigserial PRIMARY KEY,
  offer_id     bigint NOT NULL,
  call_uuid    uuid NOT NULL,
  queue_id     text NOT NULL,
  employee_id  text NOT NULL,
  node         text NOT NULL,
  strategy     text NOT NULL,
  offered_at   timestamptz NOT NULL DEFAULT now(),
  -- closed in the same transaction that takes the agent out of on_call, so an offer
  -- always ends before the agent can be offered anything else
  ended_at     timestamptz,
  outcome      text   -- answered / no_answer / busy / lost_race / caller_left / released / timeout / node_lost
);
CREATE INDEX acd_offers_call_idx ON acd_offers (call_uuid);
CREATE INDEX acd_offers_emp_idx ON acd_offers (employee_id, offered_at);
CREATE INDEX acd_offers_open_idx ON acd_offers (employee_id) WHERE ended_at IS NULL;

CREATE TABLE acd_queue_cursor (
  queue_id       text PRIMARY KEY,
  last_agent_id  text NOT NULL,
  updated_at     timestamptz NOT NULL DEFAULT now()
);

-- Messages left when a queue overflowed to voicemail; the audio is a normal recording.
CREATE TABLE voicemails (
  id            bigserial PRIMARY KEY,
  call_uuid     uuid NOT NULL,
  recording_id  uuid NOT NULL,
  queue_id      text,
  client_id     text REFERENCES clients(id) ON DELETE SET NULL,
  caller        text,
  created_at    timestamptz NOT NULL DEFAULT now(),
  state         text NOT NULL DEFAULT 'new' CHECK (state IN ('new', 'heard', 'done'))
);
CREATE INDEX voicemails_new_idx ON voicemails (created_at) WHERE state = 'new';

-- Down Migration
DROP TABLE IF EXISTS voicemails, acd_queue_cursor, acd_offers, acd_nodes;
DROP SEQUENCE IF EXISTS acd_offer_seq;
DROP INDEX IF EXISTS agent_presence_wrap_up_idx;
ALTER TABLE agent_presence DROP COLUMN IF EXISTS call_uuid, DROP COLUMN IF EXISTS claimed_by, DROP COLUMN IF EXISTS wrap_up_until;
DROP INDEX IF EXISTS queue_calls_order_idx, queue_calls_queue_idx, queue_calls_node_idx;
ALTER TABLE queue_calls DROP COLUMN IF EXISTS state, DROP COLUMN IF EXISTS client_id, DROP COLUMN IF EXISTS caller,
  DROP COLUMN IF EXISTS sticky_agent_id, DROP COLUMN IF EXISTS tried, DROP COLUMN IF EXISTS offer_id,
  DROP COLUMN IF EXISTS offered_agents, DROP COLUMN IF EXISTS offered_at, DROP COLUMN IF EXISTS queue_entered_at;
CREATE INDEX queue_calls_order_idx ON queue_calls (queue_id, priority DESC, entered_at);
