-- A schema shaped like MAAS's maasdb: tables, sequences, a bytea table standing
-- in for boot images, and (from triggers.sql) the views and triggers that
-- dbupgrade drops and re-creates. Run as the database owner.
CREATE TABLE django_migrations (
    id serial PRIMARY KEY, app varchar(255) NOT NULL, name varchar(255) NOT NULL,
    applied timestamptz NOT NULL DEFAULT now());
CREATE TABLE maasserver_zone (
    id serial PRIMARY KEY, name varchar(256) UNIQUE NOT NULL, description text NOT NULL DEFAULT '');
CREATE TABLE maasserver_vlan (
    id serial PRIMARY KEY, vid integer NOT NULL, mtu integer NOT NULL DEFAULT 1500,
    dhcp_on boolean NOT NULL DEFAULT false);
CREATE TABLE maasserver_subnet (
    id serial PRIMARY KEY, name varchar(255) NOT NULL, cidr cidr NOT NULL,
    vlan_id integer NOT NULL REFERENCES maasserver_vlan(id), gateway_ip inet);
CREATE TABLE maasserver_node (
    id serial PRIMARY KEY, system_id varchar(41) UNIQUE NOT NULL, hostname varchar(255) NOT NULL,
    status integer NOT NULL, node_type integer NOT NULL, zone_id integer REFERENCES maasserver_zone(id),
    power_parameters jsonb NOT NULL DEFAULT '{}', created timestamptz NOT NULL DEFAULT now(),
    updated timestamptz NOT NULL DEFAULT now());
CREATE TABLE maasserver_interface (
    id serial PRIMARY KEY, name varchar(255) NOT NULL, mac_address macaddr,
    node_id integer REFERENCES maasserver_node(id) ON DELETE CASCADE, vlan_id integer REFERENCES maasserver_vlan(id));
CREATE TABLE maasserver_staticipaddress (
    id serial PRIMARY KEY, ip inet, subnet_id integer REFERENCES maasserver_subnet(id),
    interface_id integer REFERENCES maasserver_interface(id) ON DELETE CASCADE);
CREATE TABLE maasserver_config (
    id serial PRIMARY KEY, name varchar(255) UNIQUE NOT NULL, value jsonb);
CREATE TABLE maasserver_secret (
    path text PRIMARY KEY, value jsonb NOT NULL, created timestamptz NOT NULL DEFAULT now(),
    updated timestamptz NOT NULL DEFAULT now());
CREATE TABLE maasserver_event (
    id bigserial PRIMARY KEY, node_id integer REFERENCES maasserver_node(id) ON DELETE CASCADE,
    action text NOT NULL, description text NOT NULL, created timestamptz NOT NULL DEFAULT now());
CREATE TABLE maasserver_bootresourcefile (
    id serial PRIMARY KEY, filename varchar(255) NOT NULL, sha256 char(64) NOT NULL,
    content bytea NOT NULL);
CREATE SEQUENCE maasserver_zone_serial_seq MINVALUE 1 MAXVALUE 4294967295 START 1;

INSERT INTO maasserver_zone (name) VALUES ('default'), ('rack-a'), ('rack-b');
INSERT INTO maasserver_vlan (vid, dhcp_on) SELECT v, v % 2 = 0 FROM generate_series(0, 9) v;
INSERT INTO maasserver_subnet (name, cidr, vlan_id, gateway_ip)
    SELECT 'subnet-' || i, ('10.' || i || '.0.0/16')::cidr, 1 + i % 10, ('10.' || i || '.0.1')::inet
    FROM generate_series(1, 20) i;
INSERT INTO maasserver_node (system_id, hostname, status, node_type, zone_id, power_parameters)
    SELECT substr(md5(random()::text), 1, 2) || lpad(to_hex(i), 4, '0'), 'machine-' || i, i % 20, i % 5, 1 + i % 3,
           jsonb_build_object('power_address', '10.0.' || (i / 250) || '.' || (i % 250), 'power_user', 'admin')
    FROM generate_series(1, 400) i;
INSERT INTO maasserver_interface (name, mac_address, node_id, vlan_id)
    SELECT 'eth' || (i % 2), ('52:54:00:' || lpad(to_hex(i / 65536 % 256), 2, '0') || ':'
           || lpad(to_hex(i / 256 % 256), 2, '0') || ':' || lpad(to_hex(i % 256), 2, '0'))::macaddr,
           1 + i % 400, 1 + i % 10
    FROM generate_series(1, 800) i;
INSERT INTO maasserver_staticipaddress (ip, subnet_id, interface_id)
    SELECT ('10.' || (1 + i % 20) || '.' || (i / 250 % 250) || '.' || (2 + i % 250))::inet, 1 + i % 20, i
    FROM generate_series(1, 800) i;
INSERT INTO maasserver_event (node_id, action, description)
    SELECT 1 + i % 400, 'power_on', 'Powered on by lab seed ' || md5(i::text)
    FROM generate_series(1, 5000) i;
INSERT INTO django_migrations (app, name)
    SELECT 'maasserver', lpad(i::text, 4, '0') || '_lab' FROM generate_series(1, 300) i;
SELECT setval('maasserver_zone_serial_seq', 42);
