-- Periodic jobs (reminders, the lead sweep, maintenance…) run in one process of the cluster at a
-- time; when it dies another takes over. The last run of each job is kept here, so the new holder
-- neither repeats a run the old one just made nor skips one that is due.
CREATE TABLE job_runs (
    name    TEXT   PRIMARY KEY,
    last_at BIGINT NOT NULL
);
