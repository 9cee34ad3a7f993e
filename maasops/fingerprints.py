"""Fingerprints of a database: one row count and md5 per table, and one for its large objects, to prove two
copies equal."""

from __future__ import annotations

# MAAS up to 3.4 keeps boot images in large objects (maasserver_largefile names them by oid, which a dump
# keeps): they are fingerprinted as one more line, under this name.
LARGE_OBJECTS = "pg_largeobject"
CHUNK = 1048576  # large objects are read a MiB at a time: a whole image never becomes one value on the server

# One read-only statement: for each base table in public, "rows:md5 of all rows in order"; and the line
# "pg_largeobject objects:md5 of every object's oid and the md5 of each MiB of its bytes".
FINGERPRINT_SQL = f"""\
SELECT name || ' ' || fp FROM (
  SELECT table_name::text AS name, (xpath('/row/c/text()', query_to_xml(format(
      'SELECT count(*) || '':'' || coalesce(md5(string_agg(t::text, ''|'' ORDER BY t::text)), '''') AS c '
      'FROM %I.%I t', table_schema, table_name), false, true, '')))[1]::text AS fp
  FROM information_schema.tables
  WHERE table_schema = 'public' AND table_type = 'BASE TABLE'
  UNION ALL
  SELECT '{LARGE_OBJECTS}', (WITH RECURSIVE chunk(lo, off, h) AS (
      SELECT oid, 0::bigint, md5(lo_get(oid, 0, {CHUNK})) FROM pg_largeobject_metadata
      UNION ALL
      SELECT lo, off + {CHUNK}, md5(lo_get(lo, off + {CHUNK}, {CHUNK})) FROM chunk WHERE h <> md5(''::bytea))
    SELECT count(DISTINCT lo) || ':' || coalesce(md5(string_agg(lo || '@' || off || '=' || h, '|'
        ORDER BY lo, off)), '') FROM chunk)
) f
ORDER BY name"""


def parse_fingerprint(text: str) -> dict[str, str]:
    """``{table: "rows:md5"}`` from the output of ``psql -XAt -c FINGERPRINT_SQL``."""
    return dict(line.split(" ", 1) for line in text.splitlines() if line.strip())
