-- The views and triggers MAAS's dbupgrade drops and re-installs.
CREATE OR REPLACE FUNCTION node_machine_update_notify() RETURNS trigger AS $$
BEGIN
  PERFORM pg_notify('machine_update', CAST(NEW.system_id AS text));
  RETURN NEW;
END;
$$ LANGUAGE plpgsql;
DROP TRIGGER IF EXISTS node_machine_update_notify ON maasserver_node;
CREATE TRIGGER node_machine_update_notify AFTER UPDATE ON maasserver_node
  FOR EACH ROW EXECUTE PROCEDURE node_machine_update_notify();
CREATE OR REPLACE FUNCTION config_update_notify() RETURNS trigger AS $$
BEGIN
  PERFORM pg_notify('config_update', CAST(NEW.name AS text));
  RETURN NEW;
END;
$$ LANGUAGE plpgsql;
DROP TRIGGER IF EXISTS config_config_update_notify ON maasserver_config;
CREATE TRIGGER config_config_update_notify AFTER UPDATE ON maasserver_config
  FOR EACH ROW EXECUTE PROCEDURE config_update_notify();
DROP VIEW IF EXISTS maasserver_routable_pairs;
CREATE VIEW maasserver_routable_pairs AS
  SELECT a.id AS left_ip_id, b.id AS right_ip_id, a.subnet_id
  FROM maasserver_staticipaddress a JOIN maasserver_staticipaddress b
    ON a.subnet_id = b.subnet_id AND a.id < b.id;
DROP VIEW IF EXISTS maas_support__node_overview;
CREATE VIEW maas_support__node_overview AS
  SELECT n.hostname, n.system_id, n.status, count(i.id) AS interfaces
  FROM maasserver_node n LEFT JOIN maasserver_interface i ON i.node_id = n.id
  GROUP BY n.id;
