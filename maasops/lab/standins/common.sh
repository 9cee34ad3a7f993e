# Shared by the lab's stand-ins for MAAS's own programs. Installed on every lab
# host as /usr/lib/maas-lab/common.sh; the host's facts come from host.env,
# written by the lab from maasops.layouts.
# shellcheck shell=bash
. /etc/maas-lab/host.env
STATE_DIR=/run/maas-lab/units
LOG_DIR=/var/log/maas-lab
READY=/run/maas-lab/region-ready
API_PID=/run/maas-lab/regiond-api.pid
ACTIVATE_SECONDS=${LAB_ACTIVATE_SECONDS:-0.5}
# A service is no child of whoever started it: nothing of the caller's (its locks) stays open in it.
exec 9>&-

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

db_host() {  # regiond.conf's database_host as MAAS's processes see it: inside the snap, maas-test-db's socket
    local host; host=$(conf_get "$LAB_REGIOND_CONF" database_host)
    if [ -n "$LAB_TEST_DB_MOUNT" ] && [ "$host" = "${LAB_TEST_DB_MOUNT%% *}" ]; then host=${LAB_TEST_DB_MOUNT#* }; fi
    printf '%s\n' "$host"
}

db_cred() {  # db_cred name|user|pass: regiond.conf's database_KEY, or where MAAS reads it once Vault keeps it
    # (config.py get_db_creds_vault_path: controller/<maas_id>/database-creds; the lab's Vault is a file)
    if [ "$LAB_DATABASE" = vault ]; then sed -n "s/^$1=//p" "$LAB_VAULT_DATABASE_CREDS"
    else conf_get "$LAB_REGIOND_CONF" "database_$1"
    fi
}

region_sql() {  # region_sql SQL: run a query on the region's database as regiond.conf says; fails if unreachable
    local conf=$LAB_REGIOND_CONF
    PGPASSWORD=$(db_cred pass) PGCONNECT_TIMEOUT=3 psql -XAt -v ON_ERROR_STOP=1 \
        -h "$(db_host)" -p "$(conf_get "$conf" database_port)" \
        -U "$(db_cred user)" -d "$(db_cred name)" -c "$1" 2>/dev/null
}

region_checks() {  # what regiond's start-up needs: prints "ok", "nodb", "old" or "secret"
    [ -r "$LAB_REGIOND_CONF" ] || { echo nodb; return; }
    local migrated secret
    migrated=$(region_sql "SELECT count(*) FROM django_migrations WHERE name = '$LAB_MAAS_SERIES'") || {
        echo nodb; return; }
    [ "$migrated" = 0 ] && { echo old; return; }
    secret=$(region_sql "$LAB_SECRET_SQL") || { echo nodb; return; }
    if [ -n "$secret" ] && [ "$secret" != "$(cat "$LAB_SECRET" 2>/dev/null)" ]; then
        # 3.3+: the database wins and the file is rewritten; before, start-up retries forever.
        [ -n "$LAB_SECRET_FROM_DB" ] || { echo secret; return; }
        printf '%s' "$secret" | write_owned "$LAB_SECRET" "$LAB_STATE_OWNER" 0640
    fi
    echo ok
}

api_start() {  # the region's API on :5240, answering once start-up finished (a ready file says so)
    [ -f "$API_PID" ] && kill -0 "$(cat "$API_PID")" 2>/dev/null && return 0
    setsid -f python3 /usr/lib/maas-lab/regiond-api "$READY" "$API_PID" </dev/null >/dev/null 2>&1 8>&-
}

api_stop() {
    rm -f "$READY"
    [ -f "$API_PID" ] && kill "$(cat "$API_PID")" 2>/dev/null
    rm -f "$API_PID"
}

close_fds() {  # a service inherits nothing from whoever started it (systemd gives it a clean slate)
    local fd
    for fd in /proc/$$/fd/*; do
        fd=${fd##*/}
        [ "$fd" -gt 2 ] 2>/dev/null && eval "exec $fd>&-"
    done
    return 0
}

dhcpd_prepare() {  # maas-dhcpd(6).service's ExecStart before dhcpd runs: the leases root:dhcpd 0664, the dir 0775
    local leases
    case $1 in maas-dhcpd) leases=dhcpd.leases ;; maas-dhcpd6) leases=dhcpd6.leases ;; *) return 0 ;; esac
    [ -n "$LAB_DHCP_DIR" ] || return 0
    leases=$LAB_DHCP_DIR/$leases
    [ -e "$leases" ] || touch "$leases"
    chown "root:$LAB_DHCP_USER" "$LAB_DHCP_DIR" "$leases" && chmod 775 "$LAB_DHCP_DIR" && chmod 664 "$leases"
}

activate() {  # runs detached, like systemd: after a moment the unit is active, or failed
    local unit=$1 verdict=ok
    close_fds
    sleep "$ACTIVATE_SECONDS"
    exec 8>"$STATE_DIR/.lock"; flock 8
    [ "$(unit_state "$unit")" = activating ] || return 0  # stopped meanwhile
    if ! dhcpd_prepare "$unit"; then
        echo failed > "$STATE_DIR/$unit"; journal "$LAB_HOST failed $unit (leases)"; return 0
    fi
    if [ -e "/etc/maas-lab/fail-start/$unit" ]; then
        echo failed > "$STATE_DIR/$unit"; journal "$LAB_HOST failed $unit"; return 0
    fi
    if [ "$unit" = "$LAB_REGION_UNIT" ]; then
        verdict=$(region_checks)
        # deb's regiond exits when it cannot start; the snap's supervisor keeps running around it.
        if [ "$LAB_INSTALL" = deb ] && { [ "$verdict" = nodb ] || [ "$verdict" = old ]; }; then
            echo failed > "$STATE_DIR/$unit"; journal "$LAB_HOST failed $unit ($verdict)"; return 0
        fi
    fi
    echo active > "$STATE_DIR/$unit"
    date +%s.%N > "$STATE_DIR/$unit.since"
    if [ "$unit" = "$LAB_REGION_UNIT" ]; then
        if [ "$verdict" = ok ]; then date +%s.%N > "$READY"; else rm -f "$READY"; fi
        api_start
    fi
}

unit_start() {
    if is_pg_unit "$1"; then
        # shellcheck disable=SC2086
        pg_ctlcluster $LAB_PG_CLUSTER start >/dev/null 2>&1 || [ "$(unit_state "$1")" = active ] || {
            echo "Job for $1.service failed because the control process exited with error code." >&2; return 1; }
        return 0
    fi
    case $(unit_state "$1") in active|activating) return 0 ;; esac
    echo activating > "$STATE_DIR/$1"
    journal "$LAB_HOST start $1"
    setsid -f bash -c '. /usr/lib/maas-lab/common.sh; activate "$1"' activate "$1" </dev/null >/dev/null 2>&1
}

unit_stop() {
    if is_pg_unit "$1"; then
        # shellcheck disable=SC2086
        [ "$(unit_state "$1")" = inactive ] || pg_ctlcluster $LAB_PG_CLUSTER stop -m fast >/dev/null
    else
        exec 8>"$STATE_DIR/.lock"; flock 8
        case $(unit_state "$1") in active|activating) journal "$LAB_HOST stop $1" ;; esac
        echo inactive > "$STATE_DIR/$1"
        [ "$1" = "$LAB_REGION_UNIT" ] && api_stop
        exec 8>&-
    fi
    return 0
}

unit_since() {  # when the unit last became active, as systemctl show --timestamp=unix prints it
    if [ -f "$STATE_DIR/$1.since" ] && [ "$(unit_state "$1")" = active ]; then
        echo "@$(cut -d. -f1 < "$STATE_DIR/$1.since")"
    fi
}

write_owned() {  # write_owned FILE OWNER MODE: stdin into FILE
    local tmp; tmp=$(mktemp "$1.XXXXXX")
    cat > "$tmp" && chown "$2" "$tmp" && chmod "$3" "$tmp" && mv -f "$tmp" "$1"
}

secret_migration() {  # 3.3+ (migration 0282): the shared secret moves from maasserver_config to maasserver_secret
    [ -n "$LAB_SECRET_FROM_DB" ] || return 0
    cat <<'SQL'
INSERT INTO maasserver_secret (path, value)
  SELECT 'global/rpc-shared', jsonb_build_object('secret', value #>> '{}') FROM maasserver_config
  WHERE name = 'rpc_shared_secret' ON CONFLICT (path) DO NOTHING;
DELETE FROM maasserver_config WHERE name = 'rpc_shared_secret';
SQL
}

dbupgrade() {
    local conf=$LAB_REGIOND_CONF out
    [ -r "$conf" ] || die "Unable to read $conf: is this a region controller?"
    PGPASSWORD=$(db_cred pass); export PGPASSWORD
    out=$(psql -X -q -v ON_ERROR_STOP=1 -h "$(db_host)" \
        -p "$(conf_get "$conf" database_port)" -U "$(db_cred user)" \
        -d "$(db_cred name)" 2>&1 <<SQL
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
$(secret_migration)
\i /usr/lib/maas-lab/triggers.sql
SELECT pg_sleep(0.5);
COMMIT;
SQL
    ) || { echo "django.db.utils.OperationalError: ${out#psql: error: }" >&2; exit 1; }
    mkdir -p "$LOG_DIR"
    echo "$(date -u +%FT%T.%NZ) $LAB_HOST dbupgrade ok" >> "$LOG_DIR/dbupgrade.log"
}
