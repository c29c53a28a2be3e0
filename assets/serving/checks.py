"""Checks of the serving file: it opens bare, and each table has exactly the rows it should.

Expected rows: per KPI table, the number of distinct keys over every gold snapshot (the serving
table keeps one row per key, from its latest ``as_of``); for the ledger, every ledger row. They are
counted from the Delta tables by a query of their own (not the serving SQL), by the reader the
publish used: DuckDB's ``delta_scan`` in a new in-memory connection, or Spark when the publish fell
back to it. (Both readers give the same tables: tests/serving/test_publish.py.)
Observed rows are read back from the published file by a bare read-only client (no extension),
which is also the proof that an executive's client can open it.
"""

from __future__ import annotations

import duckdb
from pyspark.sql import DataFrame, SparkSession

from assets.serving.publish import (
    NO_AUTOLOAD,
    SERVING_SOURCES,
    SERVING_TABLES,
    SNAPSHOT_KEYS,
    register_delta_sources,
)
from assets.storage import read_table
from quality.suites import Suite, equation_suite, not_null, unique_key

SERVING_COUNTS_SCHEMA = "table_name STRING, serving_rows LONG, gold_rows LONG"


def _source_of(table: str) -> str:
    return next(rel for rel, (_, name) in SERVING_SOURCES.items() if name == table)


def expected_row_counts(warehouse_dir: str, spark: SparkSession | None = None) -> dict[str, int]:
    """What each serving table must hold, counted from the Delta tables: by DuckDB's ``delta_scan``,
    or with ``spark`` by Spark (the fallback reader of the publish).

    The count reads every gold snapshot, so its cost grows with history: DuckDB counts a month of
    snapshots at M in ~0.3 s, where Spark took 3-4 s warm and 16-22 s cold (BENCHMARKS.md, session 23).
    """
    if spark is None:
        with duckdb.connect(config=NO_AUTOLOAD) as con:
            register_delta_sources(con, warehouse_dir)
            return {table: _duckdb_count(con, _source_of(table)) for table in SERVING_TABLES}
    counts = {}
    for table in SERVING_TABLES:
        relation = _source_of(table)
        layer, name = SERVING_SOURCES[relation]
        frame = read_table(spark, f"{warehouse_dir}/{layer}/{name}")
        keys = SNAPSHOT_KEYS.get(relation)
        counts[table] = int((frame.select(*keys).distinct() if keys else frame).count())
    return counts


def _duckdb_count(con: duckdb.DuckDBPyConnection, relation: str) -> int:
    keys = SNAPSHOT_KEYS.get(relation)
    rows = f"(SELECT DISTINCT {', '.join(keys)} FROM {relation})" if keys else relation
    return int(con.execute(f"SELECT count(*) FROM {rows}").fetchone()[0])


def served_row_counts(path: str) -> dict[str, int]:
    """Rows per serving table, read by a bare read-only DuckDB client."""
    with duckdb.connect(path, read_only=True, config=NO_AUTOLOAD) as con:
        return {t: int(con.execute(f"SELECT count(*) FROM {t}").fetchone()[0]) for t in SERVING_TABLES}


def row_count_frame(spark: SparkSession, served: dict[str, int], expected: dict[str, int]) -> DataFrame:
    rows = [(t, served.get(t), expected.get(t)) for t in SERVING_TABLES]
    return spark.createDataFrame(rows, SERVING_COUNTS_SCHEMA)


SERVING_SUITES = [
    Suite(
        name="serving_kpi_duckdb_tables",
        description="The file opens read-only without extensions and holds every serving table.",
        expectations=lambda: [*unique_key(["table_name"]), *not_null(["serving_rows", "gold_rows"])],
        example_columns=("table_name",),
    ),
    equation_suite(
        "serving_kpi_duckdb_row_counts",
        "Each serving table has one row per key of gold's latest snapshots (the ledger: every row).",
        {"serving_rows_equal_gold": "serving_rows = gold_rows"},
        example_columns=["table_name", "serving_rows", "gold_rows"],
    ),
]
