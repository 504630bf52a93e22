-- Up Migration
-- QA review of a recording (issue 10, web console): one current review per recording — a
-- score 0–100 and/or a rubric of named criteria, and free-text notes. Who changed what and
-- when is in the hash-chained audit log (action 'qa_review'); this row is the latest state.
-- `version` lets two reviewers editing the same recording notice each other (409 on a
-- stale write) instead of one silently overwriting the other.
CREATE TABLE qa_reviews (
  recording_id uuid PRIMARY KEY REFERENCES recordings(id) ON DELETE CASCADE,
  score        smallint CHECK (score BETWEEN 0 AND 100),
  rubric       jsonb NOT NULL DEFAULT '[]'::jsonb CHECK (jsonb_typeof(rubric) = 'array'),
  notes        text NOT NULL DEFAULT '' CHECK (length(notes) <= 10000),
  reviewer     text NOT NULL,
  version      integer NOT NULL DEFAULT 1,
  created_at   timestamptz NOT NULL DEFAULT now(),
  updated_at   timestamptz NOT NULL DEFAULT now()
);
-- "my reviews of this week", "lowest scores first" in a later report
CREATE INDEX qa_reviews_reviewer_idx ON qa_reviews (reviewer, updated_at);

-- Down Migration
DROP TABLE IF EXISTS qa_reviews;
