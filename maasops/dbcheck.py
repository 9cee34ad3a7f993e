"""Fingerprints of a database: one row count and md5 per table, to prove two copies equal."""

from __future__ import annotations

# One read-only statement: for each base table in public, "rows:md5 of all rows in order".
FINGERPRINT_SQL = """\
SELECT table_name || ' ' || (xpath('/row/c/text()', query_to_xml(format(
    'SELECT count(*) || '':'' || coalesce(md5(string_agg(t::text, ''|'' ORDER BY t::text)), '''') AS c '
    'FROM %I.%I t', table_schema, table_name), false, true, '')))[1]::text
FROM information_schema.tables
WHERE table_schema = 'public' AND table_type = 'BASE TABLE'
ORDER BY table_name"""


def parse_fingerprint(text: str) -> dict[str, str]:
    """``{table: "rows:md5"}`` from the output of ``psql -XAt -c FINGERPRINT_SQL``."""
    return dict(line.split(" ", 1) for line in text.splitlines() if line.strip())
