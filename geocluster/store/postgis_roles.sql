-- Least-privilege layout of a geocluster PostGIS database (see docs/POSTGIS.md).
--
-- Run once, as a superuser (or the database owner), in the target database:
--     psql -v ON_ERROR_STOP=1 -d geocluster -f geocluster/store/postgis_roles.sql
-- then give the two login roles passwords:
--     ALTER ROLE geocluster_service PASSWORD '...';
--     ALTER ROLE geocluster_reader PASSWORD '...';
--
-- geocluster_service  the API / CLI connects with it. It owns only the schemas
--                     geocluster (catalog + one table per dataset version and run
--                     layer, firm microdata included) and geocluster_published
--                     (published_<dataset> views). No superuser, no CREATEDB,
--                     no CREATEROLE, no CREATE on the database or on public.
-- geocluster_reader   read-only, for QGIS / tipg / pygeoapi: USAGE on
--                     geocluster_published and SELECT on its views only; it cannot
--                     even look up a name in the geocluster schema, so no firm table,
--                     run layer or catalog row is readable by it.
--
-- The store keeps the views current: GEOCLUSTER_STORE=postgresql://geocluster_service@
-- host/geocluster opens PostGISStore(url, published_schema="geocluster_published") and
-- every commit recreates published_<id> for the latest version of each dataset whose
-- visibility is 'public' and whose kind is not 'firms'.

CREATE EXTENSION IF NOT EXISTS postgis;

DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'geocluster_service') THEN
        CREATE ROLE geocluster_service LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOINHERIT;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'geocluster_reader') THEN
        CREATE ROLE geocluster_reader LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOINHERIT;
    END IF;
END
$$;

-- Nobody creates objects in public (the PostgreSQL 15 default, stated for older
-- clusters); PostGIS functions and types stay usable through USAGE.
REVOKE CREATE ON SCHEMA public FROM PUBLIC;
GRANT USAGE ON SCHEMA public TO geocluster_service, geocluster_reader;

-- The service owns its two schemas and nothing else.
CREATE SCHEMA IF NOT EXISTS geocluster AUTHORIZATION geocluster_service;
CREATE SCHEMA IF NOT EXISTS geocluster_published AUTHORIZATION geocluster_service;
ALTER SCHEMA geocluster OWNER TO geocluster_service;
ALTER SCHEMA geocluster_published OWNER TO geocluster_service;
REVOKE ALL ON SCHEMA geocluster FROM PUBLIC;
REVOKE ALL ON SCHEMA geocluster_published FROM PUBLIC;

-- The reader: the published views, and only them.
REVOKE ALL ON SCHEMA geocluster FROM geocluster_reader;
GRANT USAGE ON SCHEMA geocluster_published TO geocluster_reader;
GRANT SELECT ON ALL TABLES IN SCHEMA geocluster_published TO geocluster_reader;
-- views the service creates later are readable by the reader as they appear
ALTER DEFAULT PRIVILEGES FOR ROLE geocluster_service IN SCHEMA geocluster_published
    GRANT SELECT ON TABLES TO geocluster_reader;
-- tables the service creates in its own schema are never granted to anyone
ALTER DEFAULT PRIVILEGES FOR ROLE geocluster_service IN SCHEMA geocluster
    REVOKE ALL ON TABLES FROM PUBLIC;
