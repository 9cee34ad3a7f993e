-- A schema shaped like MAAS's maasdb (written for the lab, not MAAS's own DDL):
-- the tables a region fills as it runs (machines and their hardware, events,
-- commissioning and test scripts' output, DNS and DHCP data, boot resources),
-- a sequence, and (from triggers.sql) the views and triggers that dbupgrade
-- drops and re-creates. maasops/lab/seed.py fills it. Run as the database owner.
CREATE TABLE django_migrations (
    id serial PRIMARY KEY, app varchar(255) NOT NULL, name varchar(255) NOT NULL,
    applied timestamptz NOT NULL DEFAULT now());
CREATE TABLE auth_user (
    id serial PRIMARY KEY, username varchar(150) UNIQUE NOT NULL, email varchar(254) NOT NULL,
    password varchar(128) NOT NULL, is_superuser boolean NOT NULL, last_login timestamptz,
    date_joined timestamptz NOT NULL);
CREATE TABLE maasserver_sshkey (
    id serial PRIMARY KEY, user_id integer NOT NULL REFERENCES auth_user(id), key text NOT NULL,
    created timestamptz NOT NULL, updated timestamptz NOT NULL);
CREATE TABLE maasserver_config (
    id serial PRIMARY KEY, name varchar(255) UNIQUE NOT NULL, value jsonb);
CREATE TABLE maasserver_secret (
    path text PRIMARY KEY, value jsonb NOT NULL, created timestamptz NOT NULL DEFAULT now(),
    updated timestamptz NOT NULL DEFAULT now());
CREATE TABLE maasserver_versionedtextfile (
    id serial PRIMARY KEY, data text NOT NULL, comment varchar(255), created timestamptz NOT NULL);

-- Networks, DNS, DHCP.
CREATE TABLE maasserver_zone (
    id serial PRIMARY KEY, name varchar(256) UNIQUE NOT NULL, description text NOT NULL DEFAULT '');
CREATE TABLE maasserver_fabric (
    id serial PRIMARY KEY, name varchar(256) UNIQUE NOT NULL, class_type varchar(256));
CREATE TABLE maasserver_space (
    id serial PRIMARY KEY, name varchar(256) UNIQUE NOT NULL, description text NOT NULL);
CREATE TABLE maasserver_vlan (
    id serial PRIMARY KEY, fabric_id integer NOT NULL REFERENCES maasserver_fabric(id), vid integer NOT NULL,
    name varchar(256), mtu integer NOT NULL DEFAULT 1500, dhcp_on boolean NOT NULL DEFAULT false,
    space_id integer REFERENCES maasserver_space(id), description text NOT NULL);
CREATE TABLE maasserver_subnet (
    id serial PRIMARY KEY, name varchar(255) NOT NULL, cidr cidr NOT NULL,
    vlan_id integer NOT NULL REFERENCES maasserver_vlan(id), gateway_ip inet, dns_servers text[],
    allow_dns boolean NOT NULL, managed boolean NOT NULL, description text NOT NULL);
CREATE TABLE maasserver_iprange (
    id serial PRIMARY KEY, subnet_id integer NOT NULL REFERENCES maasserver_subnet(id),
    type varchar(20) NOT NULL, start_ip inet NOT NULL, end_ip inet NOT NULL, comment varchar(255) NOT NULL);
CREATE TABLE maasserver_domain (
    id serial PRIMARY KEY, name varchar(256) UNIQUE NOT NULL, authoritative boolean NOT NULL, ttl integer);
CREATE TABLE maasserver_dhcpsnippet (
    id serial PRIMARY KEY, name text NOT NULL, description text NOT NULL,
    value_id integer NOT NULL REFERENCES maasserver_versionedtextfile(id), enabled boolean NOT NULL,
    subnet_id integer REFERENCES maasserver_subnet(id), created timestamptz NOT NULL);

-- Machines and what commissioning found on them.
CREATE TABLE maasserver_bmc (
    id serial PRIMARY KEY, power_type varchar(10) NOT NULL, power_parameters jsonb NOT NULL,
    created timestamptz NOT NULL);
CREATE TABLE maasserver_node (
    id serial PRIMARY KEY, system_id varchar(41) UNIQUE NOT NULL, hostname varchar(255) NOT NULL,
    status integer NOT NULL, node_type integer NOT NULL, zone_id integer REFERENCES maasserver_zone(id),
    domain_id integer REFERENCES maasserver_domain(id), bmc_id integer REFERENCES maasserver_bmc(id),
    architecture varchar(31), osystem varchar(255) NOT NULL, distro_series varchar(255) NOT NULL,
    cpu_count integer NOT NULL, cpu_speed integer NOT NULL, memory integer NOT NULL,
    power_state varchar(10) NOT NULL, description text NOT NULL, error_description text NOT NULL,
    instance_power_parameters jsonb NOT NULL DEFAULT '{}', created timestamptz NOT NULL DEFAULT now(),
    updated timestamptz NOT NULL DEFAULT now());
CREATE TABLE maasserver_nodemetadata (
    id serial PRIMARY KEY, node_id integer NOT NULL REFERENCES maasserver_node(id) ON DELETE CASCADE,
    key varchar(64) NOT NULL, value text NOT NULL, created timestamptz NOT NULL);
CREATE TABLE maasserver_tag (
    id serial PRIMARY KEY, name varchar(256) UNIQUE NOT NULL, definition text NOT NULL, comment text NOT NULL,
    kernel_opts text NOT NULL);
CREATE TABLE maasserver_node_tags (
    id serial PRIMARY KEY, node_id integer NOT NULL REFERENCES maasserver_node(id) ON DELETE CASCADE,
    tag_id integer NOT NULL REFERENCES maasserver_tag(id));
CREATE TABLE maasserver_interface (
    id serial PRIMARY KEY, name varchar(255) NOT NULL, type varchar(20) NOT NULL, mac_address macaddr,
    node_id integer REFERENCES maasserver_node(id) ON DELETE CASCADE, vlan_id integer REFERENCES maasserver_vlan(id),
    params jsonb NOT NULL, vendor varchar(255), product varchar(255), firmware_version varchar(255),
    link_speed integer NOT NULL, interface_speed integer NOT NULL);
CREATE TABLE maasserver_staticipaddress (
    id serial PRIMARY KEY, ip inet, alloc_type integer NOT NULL, subnet_id integer REFERENCES maasserver_subnet(id),
    interface_id integer REFERENCES maasserver_interface(id) ON DELETE CASCADE, lease_time integer NOT NULL,
    created timestamptz NOT NULL);
CREATE TABLE maasserver_blockdevice (
    id serial PRIMARY KEY, node_id integer NOT NULL REFERENCES maasserver_node(id) ON DELETE CASCADE,
    name varchar(255) NOT NULL, id_path varchar(4096), size bigint NOT NULL, block_size integer NOT NULL,
    tags text[], model varchar(255) NOT NULL, serial varchar(255) NOT NULL, firmware_version varchar(255));
CREATE TABLE maasserver_dnsresource (
    id serial PRIMARY KEY, name varchar(191), domain_id integer NOT NULL REFERENCES maasserver_domain(id),
    address_ttl integer);
CREATE TABLE maasserver_dnsresource_ip_addresses (
    id serial PRIMARY KEY, dnsresource_id integer NOT NULL REFERENCES maasserver_dnsresource(id),
    staticipaddress_id integer NOT NULL REFERENCES maasserver_staticipaddress(id));
CREATE TABLE maasserver_dnsdata (
    id serial PRIMARY KEY, dnsresource_id integer NOT NULL REFERENCES maasserver_dnsresource(id),
    rrtype varchar(8) NOT NULL, rrdata text NOT NULL, ttl integer);
CREATE TABLE maasserver_dnspublication (
    id serial PRIMARY KEY, serial bigint NOT NULL, created timestamptz NOT NULL, source varchar(255) NOT NULL);

-- Events, scripts and their results.
CREATE TABLE maasserver_eventtype (
    id serial PRIMARY KEY, name varchar(255) UNIQUE NOT NULL, description varchar(255) NOT NULL,
    level integer NOT NULL);
CREATE TABLE maasserver_event (
    id bigserial PRIMARY KEY, type_id integer REFERENCES maasserver_eventtype(id),
    node_id integer REFERENCES maasserver_node(id) ON DELETE CASCADE, node_hostname varchar(255) NOT NULL,
    username varchar(150) NOT NULL, ip_address inet, user_agent text NOT NULL, endpoint integer NOT NULL,
    action text NOT NULL, description text NOT NULL, created timestamptz NOT NULL DEFAULT now());
CREATE TABLE metadataserver_script (
    id serial PRIMARY KEY, name varchar(255) UNIQUE NOT NULL, title varchar(255) NOT NULL, description text NOT NULL,
    tags text[], script_type integer NOT NULL, timeout interval NOT NULL, destructive boolean NOT NULL,
    script_id integer NOT NULL REFERENCES maasserver_versionedtextfile(id));
CREATE TABLE metadataserver_scriptset (
    id serial PRIMARY KEY, node_id integer NOT NULL REFERENCES maasserver_node(id) ON DELETE CASCADE,
    result_type integer NOT NULL, last_ping timestamptz, power_state_before_transition varchar(10) NOT NULL,
    tags text[]);
CREATE TABLE metadataserver_scriptresult (
    id serial PRIMARY KEY, script_set_id integer NOT NULL REFERENCES metadataserver_scriptset(id) ON DELETE CASCADE,
    script_id integer REFERENCES metadataserver_script(id), script_name varchar(255), status integer NOT NULL,
    exit_status integer, started timestamptz, ended timestamptz, parameters jsonb NOT NULL,
    output bytea NOT NULL, stdout bytea NOT NULL, stderr bytea NOT NULL, result bytea NOT NULL);

-- Boot resources. Up to MAAS 3.4 each file's bytes are a PostgreSQL large object (maasserver_largefile.content);
-- from 3.5 they are files in image-storage and the database keeps their sha256, size and which region has them.
CREATE TABLE maasserver_bootsource (
    id serial PRIMARY KEY, url varchar(200) UNIQUE NOT NULL, keyring_filename varchar(4096) NOT NULL,
    keyring_data bytea NOT NULL);
CREATE TABLE maasserver_bootsourceselection (
    id serial PRIMARY KEY, boot_source_id integer NOT NULL REFERENCES maasserver_bootsource(id),
    os varchar(20) NOT NULL, release varchar(20) NOT NULL, arches text[], subarches text[], labels text[]);
CREATE TABLE maasserver_bootresource (
    id serial PRIMARY KEY, rtype integer NOT NULL, name varchar(255) NOT NULL, architecture varchar(255) NOT NULL,
    extra jsonb NOT NULL, kflavor varchar(32), rolling boolean NOT NULL);
CREATE TABLE maasserver_bootresourceset (
    id serial PRIMARY KEY, resource_id integer NOT NULL REFERENCES maasserver_bootresource(id),
    version varchar(255) NOT NULL, label varchar(255) NOT NULL);
CREATE TABLE maasserver_largefile (
    id serial PRIMARY KEY, sha256 varchar(64) UNIQUE NOT NULL, total_size bigint NOT NULL, content oid NOT NULL,
    size bigint NOT NULL);
CREATE TABLE maasserver_bootresourcefile (
    id serial PRIMARY KEY, resource_set_id integer NOT NULL REFERENCES maasserver_bootresourceset(id),
    filename varchar(255) NOT NULL, filetype varchar(20) NOT NULL, extra jsonb NOT NULL,
    largefile_id integer REFERENCES maasserver_largefile(id), sha256 varchar(64) NOT NULL, size bigint NOT NULL);
CREATE TABLE maasserver_bootresourcefilesync (
    id serial PRIMARY KEY, file_id integer NOT NULL REFERENCES maasserver_bootresourcefile(id),
    region_id integer NOT NULL REFERENCES maasserver_node(id), size bigint NOT NULL);
CREATE SEQUENCE maasserver_zone_serial_seq MINVALUE 1 MAXVALUE 4294967295 START 1;
