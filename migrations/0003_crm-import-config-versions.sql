-- Up Migration
-- Nightly CRM import runs (issue 5): one row per run with its counts and the report.
CREATE TABLE import_runs (
  id           bigserial PRIMARY KEY,
  kind         text NOT NULL CHECK (kind IN ('clients', 'employees')),
  source       text,
  actor        text,
  state        text NOT NULL DEFAULT 'running' CHECK (state IN ('running', 'succeeded', 'failed')),
  started_at   timestamptz NOT NULL DEFAULT now(),
  finished_at  timestamptz,
  report       jsonb
);

-- Which run last wrote a row: a phone already written by the *current* run for another
-- client is a duplicate within the file; one written by an earlier run is a reassignment.
ALTER TABLE clients ADD COLUMN import_run bigint;
ALTER TABLE client_phones ADD COLUMN import_run bigint;

-- Config versions: the validation/dry-run report kept with the proposal, and the history
-- of activations (a rollback pops one step off it).
ALTER TABLE config_versions ADD COLUMN dry_run jsonb;
ALTER TABLE config_versions ADD COLUMN activated_at timestamptz;
ALTER TABLE config_versions ADD COLUMN activated_by text;

CREATE TABLE config_activations (
  id                bigserial PRIMARY KEY,
  version           integer NOT NULL REFERENCES config_versions(version),
  previous_version  integer REFERENCES config_versions(version),
  kind              text NOT NULL CHECK (kind IN ('activate', 'rollback')),
  actor             text NOT NULL,
  at                timestamptz NOT NULL DEFAULT now()
);

-- Down Migration
DROP TABLE IF EXISTS config_activations;
ALTER TABLE config_versions DROP COLUMN IF EXISTS dry_run, DROP COLUMN IF EXISTS activated_at, DROP COLUMN IF EXISTS activated_by;
ALTER TABLE client_phones DROP COLUMN IF EXISTS import_run;
ALTER TABLE clients DROP COLUMN IF EXISTS import_run;
DROP TABLE IF EXISTS import_runs;
