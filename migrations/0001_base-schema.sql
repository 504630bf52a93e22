-- Up Migration
-- First-cut data model (DESIGN.md §3). All timestamps are UTC (timestamptz).

CREATE TABLE offices (
  id            text PRIMARY KEY,
  name          text NOT NULL,
  tz            text NOT NULL,
  weekly_hours  jsonb NOT NULL DEFAULT '{}'::jsonb
);

CREATE TABLE calendar_days (
  office_id  text NOT NULL REFERENCES offices(id) ON DELETE CASCADE,
  day        date NOT NULL,
  kind       text NOT NULL CHECK (kind IN ('working', 'holiday', 'shortened')),
  hours      text,
  PRIMARY KEY (office_id, day)
);

CREATE TABLE employees (
  id             text PRIMARY KEY,
  name           text NOT NULL,
  group_id       text,
  role           text NOT NULL CHECK (role IN ('agent', 'manager', 'supervisor', 'secretary')),
  extension      text UNIQUE,
  mobile         text UNIQUE,           -- E.164
  office_id      text REFERENCES offices(id) ON DELETE SET NULL,
  supervisor_id  text REFERENCES employees(id) ON DELETE SET NULL,
  active         boolean NOT NULL DEFAULT true,
  created_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX employees_group_idx ON employees (group_id);

CREATE TABLE agent_presence (
  employee_id  text PRIMARY KEY REFERENCES employees(id) ON DELETE CASCADE,
  state        text NOT NULL CHECK (state IN ('ready', 'not_ready', 'on_call', 'wrap_up', 'offline')),
  reason       text,
  since        timestamptz NOT NULL DEFAULT now(),
  last_call_ended_at timestamptz
);

-- Every state change, for time-in-state statistics (seed 002).
CREATE TABLE agent_presence_history (
  id           bigserial PRIMARY KEY,
  employee_id  text NOT NULL REFERENCES employees(id) ON DELETE CASCADE,
  state        text NOT NULL,
  reason       text,
  started_at   timestamptz NOT NULL,
  ended_at     timestamptz
);
CREATE INDEX agent_presence_history_emp_idx ON agent_presence_history (employee_id, started_at);

CREATE TABLE clients (
  id                   text PRIMARY KEY,
  name                 text NOT NULL,
  inn                  text,
  segment              text CHECK (segment IN ('A', 'B', 'C')),   -- NULL = unidentified
  kind                 text NOT NULL DEFAULT 'client' CHECK (kind IN ('client', 'supplier', 'partner', 'other')),
  region               text,
  tz                   text,
  assigned_manager_id  text REFERENCES employees(id) ON DELETE SET NULL,
  attributes           jsonb NOT NULL DEFAULT '{}'::jsonb,
  created_at           timestamptz NOT NULL DEFAULT now(),
  updated_at           timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX clients_inn_idx ON clients (inn);
CREATE INDEX clients_manager_idx ON clients (assigned_manager_id);
CREATE INDEX clients_name_lower_idx ON clients (lower(name) text_pattern_ops);

CREATE TABLE client_phones (
  phone      text PRIMARY KEY,            -- E.164, one owner per number
  client_id  text NOT NULL REFERENCES clients(id) ON DELETE CASCADE
);
CREATE INDEX client_phones_client_idx ON client_phones (client_id);

CREATE TABLE calls (
  uuid         uuid PRIMARY KEY,
  direction    text NOT NULL CHECK (direction IN ('inbound', 'outbound', 'internal', 'fmc')),
  caller       text,
  callee       text,
  did          text,
  source_tag   text,
  client_id    text REFERENCES clients(id) ON DELETE SET NULL,
  agent_id     text REFERENCES employees(id) ON DELETE SET NULL,  -- who handled it (manager for FMC)
  queue_id     text,
  started_at   timestamptz NOT NULL,
  answered_at  timestamptz,
  ended_at     timestamptz,
  billsec      integer,
  hangup_cause text,
  outcome      text,   -- answered / abandoned / missed / rejected / after_hours / failed
  counted      boolean NOT NULL DEFAULT false,
  ivr_path     jsonb NOT NULL DEFAULT '[]'::jsonb,
  route_reasons jsonb NOT NULL DEFAULT '[]'::jsonb,
  csat         smallint CHECK (csat BETWEEN 1 AND 10),
  node         text
);
CREATE INDEX calls_started_idx ON calls (started_at);
CREATE INDEX calls_client_idx ON calls (client_id, started_at);
CREATE INDEX calls_agent_idx ON calls (agent_id, started_at);
CREATE INDEX calls_caller_idx ON calls (caller, started_at);

CREATE TABLE legs (
  uuid          uuid PRIMARY KEY,
  call_uuid     uuid NOT NULL REFERENCES calls(uuid) ON DELETE CASCADE,
  party         text NOT NULL,   -- caller / agent / manager / colleague / supervisor / mobile / consult / conference
  endpoint      text,
  employee_id   text REFERENCES employees(id) ON DELETE SET NULL,
  started_at    timestamptz NOT NULL,
  answered_at   timestamptz,
  ended_at      timestamptz,
  hangup_cause  text
);
CREATE INDEX legs_call_idx ON legs (call_uuid);

CREATE TABLE recordings (
  id               uuid PRIMARY KEY,
  call_uuid        uuid REFERENCES calls(uuid) ON DELETE SET NULL,
  leg_uuid         uuid,
  client_id        text REFERENCES clients(id) ON DELETE SET NULL,
  agent_id         text REFERENCES employees(id) ON DELETE SET NULL,
  spool_path       text NOT NULL,
  object_key       text,
  codec            text,
  channels         smallint,
  duration_ms      integer,
  bytes            bigint,
  sha256           text,
  state            text NOT NULL CHECK (state IN ('spooled', 'transcoding', 'stored', 'failed', 'quarantined', 'deleted')),
  failure_reason   text,
  metrics          jsonb,           -- talk / silence / overtalk per channel
  paused_spans     jsonb NOT NULL DEFAULT '[]'::jsonb,
  retention_until  timestamptz,
  legal_hold       boolean NOT NULL DEFAULT false,
  created_at       timestamptz NOT NULL DEFAULT now(),
  stored_at        timestamptz,
  UNIQUE (spool_path)
);
CREATE INDEX recordings_call_idx ON recordings (call_uuid);
CREATE INDEX recordings_client_idx ON recordings (client_id, created_at);
CREATE INDEX recordings_created_idx ON recordings (created_at, id);
CREATE INDEX recordings_retention_idx ON recordings (retention_until) WHERE state = 'stored' AND legal_hold = false;

CREATE TABLE audit_log (
  id          bigserial PRIMARY KEY,
  at          timestamptz NOT NULL DEFAULT now(),
  actor       text NOT NULL,
  action      text NOT NULL,
  recording_id uuid,
  subject     text,
  ip          text,
  details     jsonb NOT NULL DEFAULT '{}'::jsonb,
  prev_hash   text,
  hash        text
);
CREATE INDEX audit_log_recording_idx ON audit_log (recording_id);

CREATE TABLE callbacks (
  id           bigserial PRIMARY KEY,
  call_uuid    uuid REFERENCES calls(uuid) ON DELETE SET NULL,
  client_id    text REFERENCES clients(id) ON DELETE SET NULL,
  phone        text NOT NULL,
  reason       text NOT NULL,     -- after_hours / abandoned / queue_overflow / requested
  queue_id     text,
  agent_id     text REFERENCES employees(id) ON DELETE SET NULL,
  state        text NOT NULL DEFAULT 'open' CHECK (state IN ('open', 'in_progress', 'done', 'failed', 'cancelled')),
  attempts     integer NOT NULL DEFAULT 0,
  next_attempt_at timestamptz NOT NULL DEFAULT now(),
  created_at   timestamptz NOT NULL DEFAULT now(),
  done_at      timestamptz
);
CREATE INDEX callbacks_open_idx ON callbacks (next_attempt_at) WHERE state = 'open';

CREATE TABLE queue_calls (
  call_uuid   uuid PRIMARY KEY REFERENCES calls(uuid) ON DELETE CASCADE,
  queue_id    text NOT NULL,
  priority    integer NOT NULL DEFAULT 0,
  entered_at  timestamptz NOT NULL DEFAULT now(),
  offered_to  text REFERENCES employees(id) ON DELETE SET NULL,
  node        text
);
CREATE INDEX queue_calls_order_idx ON queue_calls (queue_id, priority DESC, entered_at);

-- The routing / IVR / queue document, versioned: every change audited, one call rolls back.
CREATE TABLE config_versions (
  version     serial PRIMARY KEY,
  document    jsonb NOT NULL,
  author      text NOT NULL,
  comment     text,
  created_at  timestamptz NOT NULL DEFAULT now(),
  active      boolean NOT NULL DEFAULT false
);
CREATE UNIQUE INDEX config_versions_one_active ON config_versions (active) WHERE active;

-- Down Migration
DROP TABLE IF EXISTS config_versions, queue_calls, callbacks, audit_log, recordings, legs, calls,
  client_phones, clients, agent_presence_history, agent_presence, employees, calendar_days, offices CASCADE;
