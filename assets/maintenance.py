"""Delta table maintenance: compaction (OPTIMIZE) and VACUUM of every table of the warehouse.

Daily partition writes leave a few small files per partition and day; after months that is
thousands of small files, and every read pays for listing and opening them. ``OPTIMIZE`` rewrites
each partition's small files into few large ones (a ``dataChange = false`` commit: readers and
the table's content are unaffected), ``VACUUM`` then deletes files that no version inside the
retention period still references. Both are Delta's own operations; this module only finds the
tables and reports the figures. Run by the ``onetrack_maintenance`` job (weekly schedule) and
``onetrack maintain``.
"""

from __future__ import annotations

from pyspark.sql import SparkSession

from assets.ingest.contracts import CONTRACTS
from assets.storage import hadoop_path

# Delta's own default retention: versions of the last 7 days stay readable (time travel, and the
# source versions that settlement manifests name).
DEFAULT_RETAIN_HOURS = 168

# The silver tables written clustered (``SourceContract.cluster_by``): one right-sized file per
# range of the cluster columns and day. Compaction leaves files of at least this size alone, so
# it only merges what is small and does not undo the ranges the readers skip files by.
CLUSTERED_TABLES = tuple(f"silver/{name}" for name, c in CONTRACTS.items() if c.cluster_by)
CLUSTERED_KEEP_BYTES = 8 * 1024 * 1024
_MIN_FILE_SIZE = "spark.databricks.delta.optimize.minFileSize"  # Delta: compact files below this


def warehouse_tables(spark: SparkSession, warehouse_dir: str) -> list[str]:
    """Paths of the Delta tables ``<warehouse>/<layer>/<table>``, through Hadoop's FileSystem
    (local, s3a, hdfs alike), sorted."""
    fs, root = hadoop_path(spark, warehouse_dir)
    if not fs.exists(root):
        return []
    tables = []
    for layer in fs.listStatus(root):
        if not layer.isDirectory():
            continue
        for table in fs.listStatus(layer.getPath()):
            path = table.getPath()
            if table.isDirectory() and fs.exists(path.suffix("/_delta_log")):
                tables.append(path.toString())
    return sorted(tables)


def table_files(spark: SparkSession, path: str) -> tuple[int, int]:
    """(data files, bytes) of the table's current version."""
    row = spark.sql(f"DESCRIBE DETAIL delta.`{path}`").select("numFiles", "sizeInBytes").first()
    return int(row["numFiles"]), int(row["sizeInBytes"])


def maintain_table(
    spark: SparkSession,
    path: str,
    *,
    retain_hours: int = DEFAULT_RETAIN_HOURS,
    keep_files_from: int | None = None,
) -> dict:
    """Compact then vacuum one table; returns the file counts before and after.

    ``keep_files_from``: files of at least this many bytes are not compacted (Delta's
    ``optimize.minFileSize`` for this run; default: Delta's, 1 GB).
    """
    from delta.tables import DeltaTable

    files_before, bytes_before = table_files(spark, path)
    table = DeltaTable.forPath(spark, path)
    previous = spark.conf.get(_MIN_FILE_SIZE, None)
    if keep_files_from is not None:
        spark.conf.set(_MIN_FILE_SIZE, str(keep_files_from))
    try:
        table.optimize().executeCompaction()
    finally:
        if previous is None:
            spark.conf.unset(_MIN_FILE_SIZE)
        else:
            spark.conf.set(_MIN_FILE_SIZE, previous)
    files_after, bytes_after = table_files(spark, path)
    table.vacuum(retain_hours)
    return {
        "table": path,
        "files_before": files_before,
        "files_after": files_after,
        "bytes_before": bytes_before,
        "bytes_after": bytes_after,
    }


def maintain_warehouse(
    spark: SparkSession, warehouse_dir: str, *, retain_hours: int = DEFAULT_RETAIN_HOURS, log=None
) -> list[dict]:
    """:func:`maintain_table` for every table of the warehouse (the clustered ones keep their
    right-sized files, ``CLUSTERED_KEEP_BYTES``)."""
    results = []
    for path in warehouse_tables(spark, warehouse_dir):
        clustered = any(path.rstrip("/").endswith("/" + table) for table in CLUSTERED_TABLES)
        keep = CLUSTERED_KEEP_BYTES if clustered else None
        result = maintain_table(spark, path, retain_hours=retain_hours, keep_files_from=keep)
        if log is not None:
            log(
                f"{path}: {result['files_before']} -> {result['files_after']} files "
                f"({result['bytes_before']:,} -> {result['bytes_after']:,} bytes)"
            )
        results.append(result)
    return results
