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

from collections import Counter, defaultdict
from concurrent.futures import ThreadPoolExecutor, as_completed

from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from assets.ingest.contracts import CONTRACTS
from assets.storage import ensure_properties, hadoop_path, read_table
from pipelines.config import OnetrackConfig

# Delta's own default retention: versions of the last 7 days stay readable (time travel, and the
# source versions that settlement manifests name).
DEFAULT_RETAIN_HOURS = 168
# What VACUUM keeps is the table's property: since Delta 4.0 the retention given to VACUUM is
# ignored unless it is 0 hours (delta-io/delta#5028, "Vacuum with retention threshold other than
# 0 hours is ignored"), so the configured hours are written into the property before VACUUM.
RETENTION_PROPERTY = "delta.deletedFileRetentionDuration"

# The silver tables, by their source contract, for what their maintenance differs in:
# - a table whose files are split by a field's value (``SourceContract.split_by``; the readers of
#   one value skip the other files): Delta's OPTIMIZE would merge files of different values, so it
#   is compacted by :func:`resplit_partitions` instead: the same ``dataChange = false`` rewrite,
#   per value, into files of about SPLIT_TARGET_BYTES;
# - the table properties its writer sets when it creates the table
#   (``SourceContract.silver_properties``: the columns Delta keeps statistics on): a table created
#   before a property existed gets it at its next maintenance, before its files are rewritten, so
#   the compacted files follow it.
SILVER_CONTRACTS = {f"silver/{name}": c for name, c in CONTRACTS.items()}
SPLIT_TARGET_BYTES = 256 * 1024 * 1024


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


def _split_files(spark: SparkSession, path: str, column: str, partition_column: str) -> dict:
    """Per value of ``partition_column``: (min, max) of ``column`` and size in bytes of each data
    file. One aggregate over the column, not the rows."""
    files = defaultdict(list)
    for row in (
        read_table(spark, path)
        .groupBy(partition_column, F.col("_metadata.file_path").alias("file"))
        .agg(
            F.min(column).alias("low"),
            F.max(column).alias("high"),
            F.max("_metadata.file_size").alias("size"),
        )
        .collect()
    ):
        files[row[partition_column]].append((row["low"], row["high"], row["size"]))
    return files


def needs_resplit(files: list[tuple], target_bytes: int = SPLIT_TARGET_BYTES) -> bool:
    """A partition's files, as (min, max, bytes) of the split column, need rewriting when a file
    holds more than one value (written before the split) or a value has several files under half
    the target size (the daily write leaves one per task)."""
    mixed = any(low != high for low, high, _ in files)
    small = Counter(low for low, high, size in files if low == high and size < target_bytes // 2)
    return mixed or any(n > 1 for n in small.values())


def files_per_value(partition_bytes: int, rows: dict, target_bytes: int = SPLIT_TARGET_BYTES) -> dict:
    """How many files each value of a partition is rewritten into: its share of the partition's
    rows times the partition's bytes, over the target size, rounded up (at least one)."""
    total = sum(rows.values())
    return {v: max(1, -(-partition_bytes * n // (total * target_bytes))) for v, n in rows.items()}


def partitions_to_resplit(
    spark: SparkSession,
    path: str,
    column: str,
    *,
    partition_column: str = "dt",
    target_bytes: int = SPLIT_TARGET_BYTES,
) -> list:
    """Values of ``partition_column`` whose files :func:`needs_resplit`."""
    return _to_resplit(_split_files(spark, path, column, partition_column), target_bytes)


def _to_resplit(files: dict, target_bytes: int) -> list:
    return sorted(v for v, found in files.items() if needs_resplit(found, target_bytes))


def resplit_partitions(
    spark: SparkSession,
    path: str,
    column: str,
    *,
    partition_column: str = "dt",
    target_bytes: int = SPLIT_TARGET_BYTES,
) -> list:
    """Rewrite every partition whose files :func:`needs_resplit`: per value of ``column``, its rows
    coalesced (no shuffle) into :func:`files_per_value` files; a ``dataChange = false``
    overwrite of the partition, the way Delta documents compaction by hand: readers and the
    content are unaffected. Returns the partition values rewritten."""
    files = _split_files(spark, path, column, partition_column)
    todo = _to_resplit(files, target_bytes)
    col = F.col(column)
    for value in todo:
        rows = read_table(spark, path).filter(F.col(partition_column) == F.lit(value))
        counts = {r[0]: r[1] for r in rows.groupBy(column).count().collect()}
        split = files_per_value(sum(size for _, _, size in files[value]), counts, target_bytes)
        frame = None
        for key in sorted(counts, key=lambda k: (k is None, k or "")):
            part = rows.filter(col.isNull() if key is None else col == F.lit(key)).coalesce(split[key])
            frame = part if frame is None else frame.unionByName(part)
        (
            frame.write.format("delta")
            .mode("overwrite")
            .option("replaceWhere", f"{partition_column} = '{value}'")
            .option("dataChange", "false")
            .save(path)
        )
    return todo


def maintain_table(
    spark: SparkSession,
    path: str,
    *,
    retain_hours: int = DEFAULT_RETAIN_HOURS,
    split_by: str | None = None,
    target_bytes: int = SPLIT_TARGET_BYTES,
    properties: dict[str, str] | None = None,
) -> dict:
    """Compact then vacuum one table; returns the file counts before and after.

    Compaction is Delta's OPTIMIZE, or, for a table whose files are split by the value of
    ``split_by``, :func:`resplit_partitions` (which keeps one value per file). ``properties``
    (``SourceContract.silver_properties``) are set first, with the retention VACUUM keeps (one
    commit, only when something differs).
    """
    from delta.tables import DeltaTable

    files_before, bytes_before = table_files(spark, path)
    # VACUUM keeps what the property says (see RETENTION_PROPERTY)
    wanted = {**(properties or {}), RETENTION_PROPERTY: f"interval {int(retain_hours)} hours"}
    ensure_properties(spark, path, wanted)
    table = DeltaTable.forPath(spark, path)
    rewritten = []
    if split_by is None:
        table.optimize().executeCompaction()
    else:
        rewritten = resplit_partitions(spark, path, split_by, target_bytes=target_bytes)
    files_after, bytes_after = table_files(spark, path)
    table.vacuum()
    return {
        "table": path,
        "files_before": files_before,
        "files_after": files_after,
        "bytes_before": bytes_before,
        "bytes_after": bytes_after,
        "rewritten_partitions": [str(v) for v in rewritten],
    }


def maintain_warehouse(
    spark: SparkSession,
    warehouse_dir: str,
    *,
    retain_hours: int = DEFAULT_RETAIN_HOURS,
    log=None,
    parallelism: int = OnetrackConfig.maintenance_parallelism,
) -> list[dict]:
    """:func:`maintain_table` for every table of the warehouse (each silver table as its contract says:
    ``SILVER_CONTRACTS``), ``parallelism`` tables at a time. Delta's VACUUM (and OPTIMIZE, DESCRIBE DETAIL) is
    a chain of small Spark jobs (~29 jobs and ~240 tasks for a 3-file table), so one table at a time leaves
    the driver waiting on job latency (25-45 s a table at M on 2 cores, whatever its size); Spark runs jobs
    submitted from several threads side by side, and the tables are independent Delta logs. Results in table
    order; ``log`` is called from this thread as each table finishes. A table that fails does not stop the
    others; the first failure (in table order) is raised once all have run."""
    paths = warehouse_tables(spark, warehouse_dir)

    def run(path: str) -> dict:
        table = "/".join(path.rstrip("/").split("/")[-2:])  # <layer>/<name>
        contract = SILVER_CONTRACTS.get(table)
        return maintain_table(
            spark,
            path,
            retain_hours=retain_hours,
            split_by=None if contract is None else contract.split_by,
            properties=None if contract is None else contract.silver_properties,
        )

    results: dict[str, dict] = {}
    errors: dict[str, BaseException] = {}
    workers = max(1, min(parallelism, len(paths)))
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="maintain") as pool:
        futures = {pool.submit(run, path): path for path in paths}
        for future in as_completed(futures):
            path = futures[future]
            try:
                result = future.result()
            except Exception as exc:  # reported after the other tables ran
                errors[path] = exc
                if log is not None:
                    log(f"{path}: failed: {exc}")
                continue
            results[path] = result
            if log is not None:
                log(
                    f"{path}: {result['files_before']} -> {result['files_after']} files "
                    f"({result['bytes_before']:,} -> {result['bytes_after']:,} bytes)"
                )
    if errors:
        first = min(errors)
        raise RuntimeError(
            f"maintenance of {first} failed ({len(errors)} of {len(paths)} tables failed)"
        ) from errors[first]
    return [results[path] for path in paths]
