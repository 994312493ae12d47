-- A SELECT-only PostgreSQL role for `policy-monitor serve`.
--
-- serve already opens its connections with default_transaction_read_only, but that is a
-- guard, not a privilege: `SET TRANSACTION READ WRITE` on the same connection lifts it. This
-- role cannot write whatever it sets, because it holds no privilege to write.
--
-- Run it once as the role that owns the database and runs `policy-monitor init` and
-- `db upgrade` (so tables that later migrations create are readable too), with psql:
--
--   psql -d monitor -v web_password='a long random password' -f deploy/web-role.sql
--
-- then give serve its own URL (the daemons keep theirs):
--
--   POLICY_MONITOR_WEB_DATABASE_URL=postgresql+psycopg://policy_monitor_web:…@host/monitor

CREATE ROLE policy_monitor_web LOGIN PASSWORD :'web_password'
    NOSUPERUSER NOCREATEDB NOCREATEROLE NOINHERIT;
-- Since PostgreSQL 15 nobody but the owner may create in schema public; older servers let
-- every role do so, and a role that can create tables can fill the disk.
REVOKE CREATE ON SCHEMA public FROM PUBLIC;
GRANT USAGE ON SCHEMA public TO policy_monitor_web;
GRANT SELECT ON ALL TABLES IN SCHEMA public TO policy_monitor_web;
-- Tables that later migrations create, when the owner runs them.
ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT SELECT ON TABLES TO policy_monitor_web;
