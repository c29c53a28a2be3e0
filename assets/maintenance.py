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

from assets.storage import hadoop_path

# Delta's own default retention: versions of the last 7 days stay readable (time travel, and the
# source versions that settlement manifests name).
DEFAULT_RETAIN_HOURS = 168


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


def maintain_table(spark: SparkSession, path: str, *, retain_hours: int = DEFAULT_RETAIN_HOURS) -> dict:
    """Compact then vacuum one table; returns the file counts before and after."""
    from delta.tables import DeltaTable

    files_before, bytes_before = table_files(spark, path)
    table = DeltaTable.forPath(spark, path)
    table.optimize().executeCompaction()
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
    """:func:`maintain_table` for every table of the warehouse."""
    results = []
    for path in warehouse_tables(spark, warehouse_dir):
        result = maintain_table(spark, path, retain_hours=retain_hours)
        if log is not None:
            log(
                f"{path}: {result['files_before']} -> {result['files_after']} files "
                f"({result['bytes_before']:,} -> {result['bytes_after']:,} bytes)"
            )
        results.append(result)
    return results
