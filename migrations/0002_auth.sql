-- Up Migration
-- Users and API tokens (tokens stored as SHA-256 hashes, never in clear).
CREATE TABLE users (
  id          text PRIMARY KEY,
  name        text NOT NULL,
  role        text NOT NULL CHECK (role IN ('agent', 'qa', 'supervisor', 'legal', 'admin')),
  employee_id text REFERENCES employees(id) ON DELETE SET NULL,
  active      boolean NOT NULL DEFAULT true,
  created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE api_tokens (
  token_hash  text PRIMARY KEY,
  user_id     text NOT NULL REFERENCES users(id) ON DELETE CASCADE,
  label       text,
  created_at  timestamptz NOT NULL DEFAULT now(),
  expires_at  timestamptz,
  last_used_at timestamptz,
  revoked     boolean NOT NULL DEFAULT false
);
CREATE INDEX api_tokens_user_idx ON api_tokens (user_id);

-- Down Migration
DROP TABLE IF EXISTS api_tokens, users;
