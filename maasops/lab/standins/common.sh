# Shared by the lab's stand-ins for MAAS's own programs. Installed on every lab
# host as /usr/lib/maas-lab/common.sh; the host's facts come from host.env,
# written by the lab from maasops.layouts.
# shellcheck shell=bash
. /etc/maas-lab/host.env
STATE_DIR=/run/maas-lab/units
LOG_DIR=/var/log/maas-lab

die() { echo "$*" >&2; exit 1; }

require_root() {
    [ "$(id -u)" = 0 ] || die "${1:-$(basename "$0")}: error: must be run as root (try sudo)"
}

journal() { mkdir -p "$LOG_DIR"; echo "$(date +%s.%N) $*" >> "$LOG_DIR/units.log"; }

conf_get() {  # conf_get FILE KEY: a scalar key, or the first item of a list key
    sed -n -e "/^$2:/{s/^$2: *//;/^$/{n;s/^- *//;};p;q}" "$1"
}

unit_known() {
    case " $LAB_UNITS " in *" $1 "*) return 0 ;; esac
    [ -n "$LAB_PG_CLUSTER" ] && case "$1" in postgresql|"postgresql@${LAB_PG_CLUSTER/ /-}") return 0 ;; esac
    return 1
}

is_pg_unit() { case "$1" in postgresql|postgresql@*) return 0 ;; esac; return 1; }

unit_state() {
    if is_pg_unit "$1"; then
        # shellcheck disable=SC2086
        if pg_ctlcluster $LAB_PG_CLUSTER status >/dev/null 2>&1; then echo active; else echo inactive; fi
    elif [ -f "$STATE_DIR/$1" ]; then cat "$STATE_DIR/$1"
    else echo inactive
    fi
}

region_sql() {  # region_sql SQL: run a query on the region's database as regiond.conf says; fails if unreachable
    local conf=$LAB_REGIOND_CONF
    PGPASSWORD=$(conf_get "$conf" database_pass) PGCONNECT_TIMEOUT=3 psql -XAt -v ON_ERROR_STOP=1 \
        -h "$(conf_get "$conf" database_host)" -p "$(conf_get "$conf" database_port)" \
        -U "$(conf_get "$conf" database_user)" -d "$(conf_get "$conf" database_name)" -c "$1" 2>/dev/null
}

region_starts() {  # what regiond checks on start; an unreachable database is retried, as the real one does
    [ -r "$LAB_REGIOND_CONF" ] || { echo "Unable to read $LAB_REGIOND_CONF" >&2; return 1; }
    local migrated secret
    migrated=$(region_sql "SELECT count(*) FROM django_migrations WHERE name = '$LAB_MAAS_SERIES'") || return 0
    if [ "$migrated" = 0 ]; then
        echo "regiond: the database has not been upgraded to $LAB_MAAS_SERIES: run dbupgrade first" >&2; return 1
    fi
    secret=$(region_sql "$LAB_SECRET_SQL") || return 0
    [ -n "$secret" ] && [ "$secret" != "$(cat "$LAB_SECRET" 2>/dev/null)" ] || return 0
    if [ -n "$LAB_SECRET_FROM_DB" ]; then
        printf '%s' "$secret" | write_owned "$LAB_SECRET" "$LAB_STATE_OWNER" 0640
    else
        echo "regiond: the shared secret in $LAB_SECRET differs from the database's" >&2; return 1
    fi
}

unit_start() {
    if is_pg_unit "$1"; then
        # shellcheck disable=SC2086
        pg_ctlcluster $LAB_PG_CLUSTER start >/dev/null 2>&1 || [ "$(unit_state "$1")" = active ] || {
            echo "Job for $1.service failed because the control process exited with error code." >&2; return 1; }
    elif [ -e "/etc/maas-lab/fail-start/$1" ]; then
        echo failed > "$STATE_DIR/$1"
        journal "$LAB_HOST failed $1"
        echo "Job for $1.service failed because the control process exited with error code." >&2
        echo "See \"systemctl status $1.service\" and \"journalctl -xeu $1.service\" for details." >&2
        return 1
    else
        if [ "$1" = "$LAB_REGION_UNIT" ] && [ "$(unit_state "$1")" != active ] && ! region_starts; then
            echo failed > "$STATE_DIR/$1"
            journal "$LAB_HOST failed $1"
            echo "Job for $1.service failed because the control process exited with error code." >&2
            return 1
        fi
        [ "$(unit_state "$1")" = active ] || journal "$LAB_HOST start $1"
        echo active > "$STATE_DIR/$1"
    fi
}

unit_stop() {
    if is_pg_unit "$1"; then
        # shellcheck disable=SC2086
        [ "$(unit_state "$1")" = inactive ] || pg_ctlcluster $LAB_PG_CLUSTER stop -m fast >/dev/null
    else
        [ "$(unit_state "$1")" = active ] && journal "$LAB_HOST stop $1"
        echo inactive > "$STATE_DIR/$1"
    fi
}

write_owned() {  # write_owned FILE OWNER MODE: stdin into FILE
    local tmp; tmp=$(mktemp "$1.XXXXXX")
    cat > "$tmp" && chown "$2" "$tmp" && chmod "$3" "$tmp" && mv -f "$tmp" "$1"
}

dbupgrade() {
    local conf=$LAB_REGIOND_CONF out
    [ -r "$conf" ] || die "Unable to read $conf: is this a region controller?"
    PGPASSWORD=$(conf_get "$conf" database_pass); export PGPASSWORD
    out=$(psql -X -q -v ON_ERROR_STOP=1 -h "$(conf_get "$conf" database_host)" \
        -p "$(conf_get "$conf" database_port)" -U "$(conf_get "$conf" database_user)" \
        -d "$(conf_get "$conf" database_name)" 2>&1 <<SQL
BEGIN;
DO \$\$ BEGIN
  IF NOT pg_try_advisory_xact_lock(7265676) THEN
    RAISE EXCEPTION 'deadlock detected' USING ERRCODE = '40P01';
  END IF;
END \$\$;
DROP VIEW IF EXISTS maasserver_routable_pairs, maas_support__node_overview;
DROP TRIGGER IF EXISTS node_machine_update_notify ON maasserver_node;
DROP TRIGGER IF EXISTS config_config_update_notify ON maasserver_config;
INSERT INTO django_migrations (app, name) SELECT 'maasserver', '$LAB_MAAS_SERIES'
  WHERE NOT EXISTS (SELECT 1 FROM django_migrations WHERE name = '$LAB_MAAS_SERIES');
\i /usr/lib/maas-lab/triggers.sql
SELECT pg_sleep(0.5);
COMMIT;
SQL
    ) || { echo "django.db.utils.OperationalError: ${out#psql: error: }" >&2; exit 1; }
    mkdir -p "$LOG_DIR"
    echo "$(date -u +%FT%T.%NZ) $LAB_HOST dbupgrade ok" >> "$LOG_DIR/dbupgrade.log"
}

register_rack() {  # register_rack URL SECRET: what maas-rack register / maas init rack write
    [ -n "$1" ] && [ -n "$2" ] || die "error: the following arguments are required: --url, --secret"
    printf '%s' "$2" | write_owned "$LAB_SECRET" "$LAB_STATE_OWNER" 0640
    printf 'maas_url:\n- %s\n' "$1" | write_owned "$LAB_RACKD_CONF" "$LAB_CONF_OWNER" 0640
}
