"""Live read access to the Delta tables from DuckDB, for analysts.

The serving file (``kpi.duckdb``) is a published copy; this gives the live state instead:

- ``<layer>.<table>``: every Delta table of the warehouse as a view (``gold.kpi_daily`` holds all
  snapshots, ``silver.orders`` every accepted version, ``finance.ad_fee_refund_ledger`` …);
- ``kpi_daily``, ``kpi_merchant_daily``, ``kpi_campaign_daily``, ``return_attribution_daily``,
  ``ad_fee_refund_ledger``: the serving definitions of ``sql/serving/`` as views (latest ``as_of``
  per key), so live and published numbers come from the same SQL.

The Delta extension is loaded from the ``duckdb-extension-delta`` wheel; nothing is downloaded.

Usage::

    from assets.serving.live import connect_live
    con = connect_live()                      # warehouse from ONETRACK_WAREHOUSE_DIR
    con.sql("SELECT * FROM kpi_daily ORDER BY dt DESC LIMIT 7").show()

    python -m assets.serving.live "SELECT * FROM gold.kpi_daily WHERE dt = DATE '2026-11-20'"
    python -m assets.serving.live --print-sql > live.sql   # the same set-up as a SQL script
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import duckdb

from assets.serving.publish import (
    NO_AUTOLOAD,
    SERVING_SOURCES,
    SERVING_TABLES,
    SQL_DIR,
    _quote,
    delta_extension_path,
    is_delta_table,
    serving_sql,
)
from pipelines.config import OnetrackConfig

SKIPPED_LAYERS = {"serving"}


def discover_tables(warehouse_dir: str) -> list[tuple[str, str, str]]:
    """(layer, table, path) of every Delta table under ``<warehouse>/<layer>/<table>``."""
    found = []
    root = Path(warehouse_dir)
    if not root.is_dir():
        return found
    for layer_dir in sorted(p for p in root.iterdir() if p.is_dir() and p.name not in SKIPPED_LAYERS):
        for table_dir in sorted(p for p in layer_dir.iterdir() if p.is_dir()):
            if is_delta_table(str(table_dir)):
                found.append((layer_dir.name, table_dir.name, str(table_dir)))
    return found


def live_sql(warehouse_dir: str, sql_dir: Path = SQL_DIR) -> str:
    """The set-up script: load the extension, one view per Delta table, the serving views."""
    tables = discover_tables(warehouse_dir)
    statements = [f"LOAD {_quote(delta_extension_path())};"]
    for layer in sorted({layer for layer, _, _ in tables}):
        statements.append(f"CREATE SCHEMA IF NOT EXISTS {layer};")
    for layer, table, path in tables:
        statements.append(
            f"CREATE OR REPLACE VIEW {layer}.{table} AS SELECT * FROM delta_scan({_quote(path)});"
        )
    present = {(layer, table) for layer, table, _ in tables}
    # The serving SQL reads <layer>_<table>; alias those to the live views.
    for relation, (layer, table) in SERVING_SOURCES.items():
        if (layer, table) in present:
            statements.append(f"CREATE OR REPLACE TEMP VIEW {relation} AS SELECT * FROM {layer}.{table};")
    sources_of = {
        "ad_fee_refund_ledger": "finance_ad_fee_refund_ledger",
    }
    for table in SERVING_TABLES:
        source = sources_of.get(table, f"gold_{table}")
        if (SERVING_SOURCES[source][0], SERVING_SOURCES[source][1]) not in present:
            continue
        sql = serving_sql(table, sql_dir).replace("CREATE OR REPLACE TABLE", "CREATE OR REPLACE TEMP VIEW", 1)
        statements.append(sql.strip())
    return "\n".join(statements) + "\n"


def connect_live(warehouse_dir: str | None = None, database: str = ":memory:") -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB connection with live views over every Delta table of the warehouse."""
    warehouse_dir = warehouse_dir or OnetrackConfig.from_env().warehouse_dir
    con = duckdb.connect(database, config=NO_AUTOLOAD)
    con.execute(live_sql(warehouse_dir))
    return con


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Query the onetrack Delta tables live with DuckDB.")
    parser.add_argument("query", nargs="?", help="SQL to run; without it, list the views")
    parser.add_argument("--warehouse", default=os.environ.get("ONETRACK_WAREHOUSE_DIR"))
    parser.add_argument("--print-sql", action="store_true", help="print the set-up script and exit")
    args = parser.parse_args(argv)
    warehouse_dir = args.warehouse or OnetrackConfig.from_env().warehouse_dir
    if args.print_sql:
        sys.stdout.write(live_sql(warehouse_dir))
        return 0
    con = connect_live(warehouse_dir)
    query = args.query or (
        "SELECT schema_name, view_name FROM duckdb_views() WHERE NOT internal ORDER BY 1, 2"
    )
    con.sql(query).show(max_rows=200, max_width=200)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
