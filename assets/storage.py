"""Delta table I/O shared by every stage: partition-scoped idempotent writes and as-of reads."""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Sequence
from urllib.parse import unquote

from pyspark.sql import DataFrame, SparkSession, Window
from pyspark.sql import functions as F


def hadoop_path(spark: SparkSession, path: str):
    """(Hadoop ``FileSystem``, ``Path``) of ``path`` through the JVM gateway: local, s3a, hdfs alike."""
    hpath = spark.sparkContext._jvm.org.apache.hadoop.fs.Path(path)
    return hpath.getFileSystem(spark.sparkContext._jsc.hadoopConfiguration()), hpath


def table_exists(spark: SparkSession, path: str) -> bool:
    from delta.tables import DeltaTable

    try:
        return DeltaTable.isDeltaTable(spark, path)
    except Exception:  # a missing directory on some filesystems raises instead of returning False
        return False


def read_table(spark: SparkSession, path: str) -> DataFrame:
    return spark.read.format("delta").load(path)


# A record cannot land more than this many days before it happened (its own time: an order's
# updated_at or paid_at, a spend row's stat_date, an event's event_time): the bound by which
# windowed reads prune landing partitions (docs/DESIGN.md).
LANDING_SLACK_DAYS = 1

# A change set materialized by an incremental step is broadcast to its joins with a snapshot when
# it has at most this many rows, so the snapshot side is never shuffled.
BROADCAST_MAX_ROWS = 1_000_000


def materialize_small(df: DataFrame) -> DataFrame:
    """Materialize ``df`` (a day's change set) once; broadcast it to joins if it is small."""
    df = df.localCheckpoint(eager=True)
    return F.broadcast(df) if df.count() <= BROADCAST_MAX_ROWS else df


def split_by_value(df: DataFrame, column: str, values: Sequence[str]) -> DataFrame:
    """``df`` with each of its partitions split in one per value of ``column`` (``values``, then
    one for any other value or null), without a shuffle: written, each file holds one value, so
    Delta's per-file min/max statistics let a filter on ``column`` skip the other files. (Relies
    on ``spark.sql.unionOutputPartitioning = false``, set by :mod:`pipelines.spark`.)"""
    col = F.col(column)
    parts = [df.filter(col == F.lit(v)) for v in values]
    parts.append(df.filter(col.isNull() | ~col.isin(*values)))
    out = parts[0]
    for part in parts[1:]:
        out = out.unionByName(part)
    return out


def read_or_empty(spark: SparkSession, path: str, schema) -> DataFrame:
    """The table, or an empty frame of ``schema`` when nothing was written yet."""
    if table_exists(spark, path):
        return read_table(spark, path)
    return spark.createDataFrame([], schema)


def _literal(value) -> str:
    if isinstance(value, (dt.date, dt.datetime)):
        return f"'{value.isoformat()}'"
    if isinstance(value, str):
        return "'" + value.replace("'", "''") + "'"
    return str(value)


def _partition_tag(partition: dict) -> dict:
    return {
        col: val.isoformat() if isinstance(val, (dt.date, dt.datetime)) else str(val)
        for col, val in partition.items()
    }


def replace_partition(
    df: DataFrame,
    path: str,
    partition: dict,
    partition_by: Sequence[str] | None = None,
    *,
    merge_schema: bool = False,
    properties: dict[str, str] | None = None,
) -> int:
    """Overwrite exactly the rows matching ``partition`` (column -> value) with ``df``.

    Idempotent: re-running with the same input leaves the table's content unchanged. Returns the
    table version written. The commit's ``userMetadata`` records the partition. With
    ``merge_schema``, columns of ``df`` the table lacks are added to it (older rows read them as
    null). ``properties``: Delta table properties, applied by Delta when this write creates the
    table (an existing table keeps its own: :func:`ensure_properties`).
    """
    predicate = " AND ".join(f"{col} = {_literal(val)}" for col, val in partition.items())
    writer = (
        df.write.format("delta")
        .mode("overwrite")
        .option("replaceWhere", predicate)
        .partitionBy(*(partition_by or list(partition)))
    )
    if merge_schema:
        writer = writer.option("mergeSchema", "true")
    for name, value in (properties or {}).items():
        writer = writer.option(name, value)
    tag = {"partition": _partition_tag(partition)}
    writer.option("userMetadata", json.dumps(tag, sort_keys=True)).save(path)
    return _written_version(df.sparkSession, path)


def partition_values(spark: SparkSession, path: str, column: str) -> set[str] | None:
    """The values of partition ``column`` in the Delta table's current files, read from its
    transaction log (the file list), not from the data; None if a file's path does not show the
    value (a layout without ``column=value`` directories)."""
    pattern = re.compile(rf"(?:^|/){re.escape(column)}=([^/]+)/")
    values = set()
    for file in read_table(spark, path).inputFiles():
        found = pattern.search(file)
        if found is None:
            return None
        values.add(unquote(found.group(1)))
    return values


def partition_dates(spark: SparkSession, path: str, column: str) -> set[dt.date]:
    """The dates of partition ``column`` the table holds rows for: from its file list
    (:func:`partition_values`), else (a layout without ``column=value`` directories) from a
    distinct scan of the column, which reads every row of the history."""
    listed = partition_values(spark, path, column)
    if listed is not None:
        return {dt.date.fromisoformat(v) for v in listed}
    return {row[0] for row in read_table(spark, path).select(column).distinct().collect()}


def ensure_properties(spark: SparkSession, path: str, properties: dict[str, str]) -> bool:
    """Set the table properties the Delta table at ``path`` lacks or holds with another value (one
    ``SET TBLPROPERTIES`` commit; rows unchanged); True if it committed."""
    current = table_properties(spark, path)
    missing = {k: v for k, v in properties.items() if current.get(k) != v}
    if not missing:
        return False
    settings = ", ".join(f"'{k}' = '{v}'" for k, v in sorted(missing.items()))
    spark.sql(f"ALTER TABLE delta.`{path}` SET TBLPROPERTIES ({settings})")
    return True


def _delta_log(spark: SparkSession, path: str):
    """Delta's (cached) ``DeltaLog`` of the table at ``path`` through the JVM gateway; None on
    Spark Connect, which has no gateway."""
    jvm = getattr(spark, "_jvm", None)
    if jvm is None:
        return None
    return jvm.org.apache.spark.sql.delta.DeltaLog.forTable(spark._jsparkSession, path)


def _current_snapshot(spark: SparkSession, path: str):
    """Delta's snapshot of the table as its log is now (the log listed again, like a read): its
    version and metadata come from the log and the checksum Delta writes with each commit, without
    the Spark jobs of ``DESCRIBE DETAIL`` or ``history()`` (1-2 s each on a table just written).
    None on Spark Connect."""
    delta_log = _delta_log(spark, path)
    if delta_log is None:
        return None
    none = spark._jvm.scala.Option.empty()
    return delta_log.update(False, none, none)


def table_version(spark: SparkSession, path: str) -> int:
    """The table's latest version (reads the log as it is now)."""
    from delta.tables import DeltaTable

    snapshot = _current_snapshot(spark, path)
    if snapshot is None:
        return int(DeltaTable.forPath(spark, path).history(1).select("version").first()[0])
    return int(snapshot.version())


def table_id(spark: SparkSession, path: str) -> str:
    """The table's id (Delta's ``metaData.id``: a table created again at the same path gets a
    new one)."""
    snapshot = _current_snapshot(spark, path)
    if snapshot is None:
        return spark.sql(f"DESCRIBE DETAIL delta.`{path}`").select("id").first()[0]
    return str(snapshot.metadata().id())


def table_properties(spark: SparkSession, path: str) -> dict[str, str]:
    """The table's properties (``delta.*`` settings and others), as ``DESCRIBE DETAIL`` shows them."""
    snapshot = _current_snapshot(spark, path)
    if snapshot is None:
        return dict(spark.sql(f"DESCRIBE DETAIL delta.`{path}`").first()["properties"])
    as_java = spark._jvm.scala.jdk.javaapi.CollectionConverters.asJava
    return dict(as_java(snapshot.metadata().configuration()))


def _written_version(spark: SparkSession, path: str) -> int:
    """The version this process just committed to ``path``: Delta's cached snapshot of the table
    is the one the write left, so no Spark job is needed (Spark Connect: ask the history)."""
    delta_log = _delta_log(spark, path)
    if delta_log is None:
        return table_version(spark, path)
    return int(delta_log.unsafeVolatileSnapshot().version())


def latest_version(
    df: DataFrame,
    key_cols: Sequence[str],
    order_cols: Sequence[str],
) -> DataFrame:
    """Keep, per key, the row that sorts last by ``order_cols`` (all descending = latest wins)."""
    window = Window.partitionBy(*key_cols).orderBy(*[F.col(c).desc_nulls_last() for c in order_cols])
    return df.withColumn("_rank", F.row_number().over(window)).filter(F.col("_rank") == 1).drop("_rank")


# SPEC §2: latest ``updated_at`` wins; ties: later dt, later file name, later line.
VERSION_ORDER = ("updated_at", "dt", "source_file", "line_number")
# SPEC §2 ad_spend restatement: latest dt, then file name, then line.
RESTATEMENT_ORDER = ("dt", "source_file", "line_number")


def as_of(df: DataFrame, as_of_date: dt.date) -> DataFrame:
    """SPEC §1 as-of rule: only records from landing folders ``dt <= as_of_date``."""
    return df.filter(F.col("dt") <= F.lit(as_of_date))
