-- One login role and one database per service; the role owns its database and
-- no other role may connect to it, so no service reaches another's tables
-- (the same layout as scripts/lib/service-databases.ts gives the local mesh).
-- Run once by the postgres image on an empty data directory, in compose
-- (mounted from here) and in Kubernetes (the postgres-init ConfigMap).
-- The passwords are development defaults: change them (and the URLs in
-- compose.yaml / the meshwork-database Secret) for anything shared.
CREATE ROLE meshwork_identity LOGIN PASSWORD 'meshwork_identity';
CREATE DATABASE meshwork_identity OWNER meshwork_identity;
REVOKE ALL ON DATABASE meshwork_identity FROM PUBLIC;

CREATE ROLE meshwork_catalog LOGIN PASSWORD 'meshwork_catalog';
CREATE DATABASE meshwork_catalog OWNER meshwork_catalog;
REVOKE ALL ON DATABASE meshwork_catalog FROM PUBLIC;

CREATE ROLE meshwork_orders LOGIN PASSWORD 'meshwork_orders';
CREATE DATABASE meshwork_orders OWNER meshwork_orders;
REVOKE ALL ON DATABASE meshwork_orders FROM PUBLIC;

CREATE ROLE meshwork_payments LOGIN PASSWORD 'meshwork_payments';
CREATE DATABASE meshwork_payments OWNER meshwork_payments;
REVOKE ALL ON DATABASE meshwork_payments FROM PUBLIC;

CREATE ROLE meshwork_notifications LOGIN PASSWORD 'meshwork_notifications';
CREATE DATABASE meshwork_notifications OWNER meshwork_notifications;
REVOKE ALL ON DATABASE meshwork_notifications FROM PUBLIC;
