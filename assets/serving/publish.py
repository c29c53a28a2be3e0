"""SPEC §10: publish ``<warehouse>/serving/kpi.duckdb`` for executives.

The file holds plain DuckDB tables (no views, nothing that needs an extension): the four KPI tables
with, per key, the row of the latest ``as_of`` snapshot, and the whole ``ad_fee_refund_ledger``.
The tables are defined by ``sql/serving/<table>.sql`` (one statement per file), which read the
Delta tables through relations named ``<layer>_<table>`` (e.g. ``gold_kpi_daily``).

Those relations are views over ``delta_scan`` (the Delta extension shipped in the
``duckdb-extension-delta`` wheel, loaded from its file, never downloaded) or, as a fallback,
Arrow tables read by Spark (:func:`spark_arrow_sources`).

The file is built under a temporary name in the same directory and moved into place with
``os.replace``, so a reader sees either the previous file or the new one, never half of one.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from pipelines.config import REPO_ROOT

SQL_DIR = REPO_ROOT / "sql"
SERVING_FILE_NAME = "kpi.duckdb"

# Serving tables, in the order they are built (each from sql/serving/<table>.sql).
SERVING_TABLES = (
    "kpi_daily",
    "kpi_merchant_daily",
    "kpi_campaign_daily",
    "return_attribution_daily",
    "ad_fee_refund_ledger",
)
# Relation name used by the serving SQL -> (layer, Delta table under <warehouse>/<layer>/<table>).
SERVING_SOURCES = {
    "gold_kpi_daily": ("gold", "kpi_daily"),
    "gold_kpi_merchant_daily": ("gold", "kpi_merchant_daily"),
    "gold_kpi_campaign_daily": ("gold", "kpi_campaign_daily"),
    "gold_return_attribution_daily": ("gold", "return_attribution_daily"),
    "finance_ad_fee_refund_ledger": ("finance", "ad_fee_refund_ledger"),
}
# Snapshot tables: key columns per gold table, used to keep the latest as_of per key.
SNAPSHOT_KEYS = {
    "gold_kpi_daily": ("dt",),
    "gold_kpi_merchant_daily": ("dt", "merchant_id"),
    "gold_kpi_campaign_daily": ("dt", "campaign_id"),
    "gold_return_attribution_daily": ("dt", "attributed_pool", "reexposure"),
}

# A connection that never fetches anything: the extension is loaded from the installed wheel only.
NO_AUTOLOAD = {"autoinstall_known_extensions": False, "autoload_known_extensions": False}


@dataclass(frozen=True)
class PublishResult:
    path: str
    row_counts: dict[str, int]
    source_reader: dict[str, str] = field(default_factory=dict)  # relation -> "delta_scan" | "arrow"


def serving_file_path(warehouse_dir: str) -> str:
    return f"{warehouse_dir}/serving/{SERVING_FILE_NAME}"


def delta_extension_path() -> str:
    """The ``delta.duckdb_extension`` file shipped in the ``duckdb-extension-delta`` wheel."""
    import duckdb_extension_delta

    base = Path(duckdb_extension_delta.__file__).resolve().parent / "extensions"
    preferred = base / f"v{duckdb.__version__}" / "delta.duckdb_extension"
    if preferred.is_file():
        return str(preferred)
    found = sorted(base.glob("*/delta.duckdb_extension"))
    if not found:
        raise FileNotFoundError(
            f"no delta.duckdb_extension under {base}; is duckdb-extension-delta installed?"
        )
    return str(found[-1])


def _quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def load_delta_extension(con: duckdb.DuckDBPyConnection) -> None:
    con.execute(f"LOAD {_quote(delta_extension_path())}")


def is_delta_table(path: str) -> bool:
    return os.path.isdir(os.path.join(path, "_delta_log"))


def serving_sql(table: str, sql_dir: Path = SQL_DIR) -> str:
    return (Path(sql_dir) / "serving" / f"{table}.sql").read_text(encoding="utf-8")


def register_delta_sources(
    con: duckdb.DuckDBPyConnection,
    warehouse_dir: str,
    sources: Mapping[str, tuple[str, str]] = SERVING_SOURCES,
    *,
    temporary: bool = True,
) -> dict[str, str]:
    """Views ``<relation>`` over ``delta_scan`` of each source table; returns relation -> path."""
    load_delta_extension(con)
    paths = {}
    for relation, (layer, table) in sources.items():
        path = f"{warehouse_dir}/{layer}/{table}"
        if not is_delta_table(path):
            raise FileNotFoundError(f"{layer}/{table} is not a Delta table yet: {path}")
        kind = "TEMP VIEW" if temporary else "VIEW"
        con.execute(f"CREATE OR REPLACE {kind} {relation} AS SELECT * FROM delta_scan({_quote(path)})")
        paths[relation] = path
    return paths


def publish_kpi_duckdb(
    warehouse_dir: str,
    *,
    target: str | None = None,
    arrow_sources: Mapping[str, object] | None = None,
    sql_dir: Path = SQL_DIR,
) -> PublishResult:
    """Build the serving file from the Delta tables and swap it in atomically.

    ``arrow_sources`` (relation -> Arrow table, see :func:`spark_arrow_sources`) replaces
    ``delta_scan`` for the relations it names.
    """
    target = target or serving_file_path(warehouse_dir)
    directory = os.path.dirname(os.path.abspath(target))
    os.makedirs(directory, exist_ok=True)
    temporary = os.path.join(directory, f".{os.path.basename(target)}.{uuid.uuid4().hex}.tmp")
    arrow_sources = dict(arrow_sources or {})
    reader = {}
    try:
        con = duckdb.connect(temporary, config=NO_AUTOLOAD)
        try:
            for relation, table in arrow_sources.items():
                con.register(relation, table)
                reader[relation] = "arrow"
            remaining = {k: v for k, v in SERVING_SOURCES.items() if k not in arrow_sources}
            if remaining:
                for relation in register_delta_sources(con, warehouse_dir, remaining):
                    reader[relation] = "delta_scan"
            for table in SERVING_TABLES:
                con.execute(serving_sql(table, sql_dir))
            row_counts = {
                t: int(con.execute(f"SELECT count(*) FROM {t}").fetchone()[0]) for t in SERVING_TABLES
            }
            for relation in arrow_sources:
                con.unregister(relation)
            con.execute("CHECKPOINT")
        finally:
            con.close()
        os.replace(temporary, target)
    except BaseException:
        for leftover in (temporary, temporary + ".wal"):
            if os.path.exists(leftover):
                os.remove(leftover)
        raise
    return PublishResult(path=target, row_counts=row_counts, source_reader=reader)


def spark_arrow_sources(spark, warehouse_dir: str) -> dict[str, object]:
    """Fallback reader: the serving sources read by Spark into Arrow (gold: latest snapshot only).

    Small by construction: one row per KPI key and the ledger.
    """
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    from assets.storage import read_table

    sources = {}
    for relation, (layer, table) in SERVING_SOURCES.items():
        frame = read_table(spark, f"{warehouse_dir}/{layer}/{table}")
        keys = SNAPSHOT_KEYS.get(relation)
        if keys:
            latest_first = Window.partitionBy(*keys).orderBy(F.col("as_of").desc())
            frame = (
                frame.withColumn("_rank", F.row_number().over(latest_first))
                .filter(F.col("_rank") == 1)
                .drop("_rank")
            )
        sources[relation] = frame.toArrow()
    return sources
