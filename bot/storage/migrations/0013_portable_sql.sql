-- The queries are written once for SQLite and PostgreSQL: profile fields are read with ->> (SQLite
-- 3.38+, PostgreSQL's jsonb), referral codes compared with lower() on both sides. SQLite uses an
-- index on an expression only when the query has the same expression, so the indexes follow.
DROP INDEX users_by_state;
DROP INDEX users_by_sector;
CREATE INDEX users_by_state ON users (profile ->> 'state');
CREATE INDEX users_by_sector ON users (profile ->> 'sector');
CREATE INDEX startups_by_referral_lower ON startups (lower(referral_code));
CREATE INDEX users_by_referral_lower ON users (lower(referral_code)) WHERE referral_code IS NOT NULL;
