"""The ingestion steps of one source and landing date: read -> bronze, bronze -> silver/quarantine.

These functions do the table I/O around the pure transforms in ``bronze`` and ``validate`` and
return plain dicts of figures; the Dagster assets only call them and report.
"""

from __future__ import annotations

import datetime as dt

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from assets.ingest.bronze import BRONZE_SCHEMA, FILES_SCHEMA, read_landing_partition
from assets.ingest.contracts import SourceContract
from assets.ingest.validate import classify, to_quarantine, to_silver, validate_records
from assets.storage import read_table, replace_partition, table_exists
from pipelines.config import OnetrackConfig

AUDIT_SCHEMA = T.StructType(
    [
        T.StructField("dt", T.DateType(), False),
        T.StructField("source", T.StringType(), False),
        T.StructField("files_read", T.LongType(), False),
        T.StructField("files_accepted", T.LongType(), False),
        T.StructField("files_quarantined", T.LongType(), False),
        T.StructField("records_read", T.LongType(), False),
        T.StructField("records_accepted", T.LongType(), False),
        T.StructField("records_quarantined", T.LongType(), False),
        T.StructField("records_duplicate", T.LongType(), False),
        T.StructField("extra_fields", T.MapType(T.StringType(), T.LongType()), True),
    ]
)


def ingest_bronze(spark: SparkSession, cfg: OnetrackConfig, contract: SourceContract, day: dt.date) -> dict:
    """Land one source's folder ``dt=day`` into ``bronze/<source>`` and ``bronze/landing_files``."""
    records, files = read_landing_partition(spark, cfg.landing_dir, contract, day)
    bronze_path = cfg.table_path("bronze", contract.name)
    version = replace_partition(records.select(*BRONZE_SCHEMA.fieldNames()), bronze_path, {"dt": day}, ["dt"])
    files_df = spark.createDataFrame(files, FILES_SCHEMA)
    replace_partition(
        files_df, cfg.table_path("bronze", "landing_files"), {"dt": day, "source": contract.name}, ["dt"]
    )
    quarantined_files = [f for f in files if f["status"] == "quarantined"]
    return {
        "files_read": len(files),
        "files_quarantined": len(quarantined_files),
        "quarantined_files": [f"{f['source_file']}: {f['error']}" for f in quarantined_files],
        "records_read": sum(f["records"] or 0 for f in files),
        "delta_version": version,
        "table_path": bronze_path,
    }


# Days of clock skew allowed between a record's own time and the landing folder it arrives in.
DUPLICATE_LOOKBACK_SLACK_DAYS = 1


def duplicate_lookback_start(validated: DataFrame, contract: SourceContract) -> dt.date | None:
    """The first landing date an earlier copy of any valid record of this batch can be in.

    SPEC §3 compares against every earlier partition; but an exact repeat carries the same
    timestamp as its original (``updated_at``, ``stat_date``, traffic's ``event_time``) and a
    record cannot land before it happened, so the original landed on or after that business day.
    Bounding the scan by the batch's earliest such day (less a day of slack) finds exactly the
    same duplicates while keeping a day's cost flat as history grows. None: no bound (no
    ``occurred_at`` field, or no valid record in the batch).
    """
    if contract.occurred_at is None:
        return None
    earliest = (
        validated.filter(F.col("rule").isNull())
        .agg(F.min(F.to_date(F.col(contract.occurred_at))).alias("d"))
        .first()["d"]
    )
    return None if earliest is None else earliest - dt.timedelta(days=DUPLICATE_LOOKBACK_SLACK_DAYS)


# Landing partitions before D always read whole for duplicates; older ones only for late records.
DUPLICATE_RECENT_DAYS = 2


def earlier_duplicate_keys(
    spark: SparkSession,
    cfg: OnetrackConfig,
    contract: SourceContract,
    day: dt.date,
    since: dt.date | None = None,
    batch: DataFrame | None = None,
) -> DataFrame:
    """Duplicate keys accepted in landing partitions before ``day`` (and from ``since``) (SPEC §3).

    With the validated ``batch``, the partitions older than ``DUPLICATE_RECENT_DAYS`` before
    ``day`` contribute only the keys of the batch's late records (own time more than
    ``DUPLICATE_RECENT_DAYS - slack`` days before ``day``): a record's original landed on or after
    its business day less the slack, so a recent record's original can only be in the recent
    partitions. Each record thus meets the same earlier copies as with the whole range, while the
    bulk of a day (recent records) is joined against two partitions, not every partition back to
    the batch's latest-arriving record.
    """
    cols = list(contract.duplicate_columns)
    path = cfg.table_path("silver", contract.name)
    if not table_exists(spark, path):
        return spark.createDataFrame([], ", ".join(f"{c} string" for c in cols))
    earlier = read_table(spark, path).filter(F.col("dt") < F.lit(day))
    if since is not None:
        earlier = earlier.filter(F.col("dt") >= F.lit(since))
    recent_start = day - dt.timedelta(days=DUPLICATE_RECENT_DAYS)
    if batch is None or contract.occurred_at is None or since is None or since >= recent_start:
        return earlier.select(*cols)
    own_day = F.to_date(F.col(contract.occurred_at))
    late_keys = (
        batch.filter(
            F.col("rule").isNull()
            & (F.date_sub(own_day, DUPLICATE_LOOKBACK_SLACK_DAYS) < F.lit(recent_start))
        )
        .select(*cols)
        .distinct()
    )
    recent = earlier.filter(F.col("dt") >= F.lit(recent_start)).select(*cols)
    older = (
        earlier.filter(F.col("dt") < F.lit(recent_start))
        .select(*cols)
        .join(late_keys, on=cols, how="left_semi")
    )
    return recent.unionByName(older)


def ingest_silver(spark: SparkSession, cfg: OnetrackConfig, contract: SourceContract, day: dt.date) -> dict:
    """Validate bronze ``dt=day``; write silver, quarantine and the audit row of SPEC §3."""
    bronze = read_table(spark, cfg.table_path("bronze", contract.name)).filter(F.col("dt") == F.lit(day))
    validated = validate_records(bronze, contract).localCheckpoint(eager=True)
    since = duplicate_lookback_start(validated, contract)
    labeled = classify(
        validated, earlier_duplicate_keys(spark, cfg, contract, day, since, validated), contract
    ).localCheckpoint(eager=True)
    silver = to_silver(labeled.filter(F.col("disposition") == "accepted"), contract)
    quarantine = to_quarantine(labeled.filter(F.col("disposition") == "quarantined"))
    silver_version = replace_partition(
        silver,
        cfg.table_path("silver", contract.name),
        {"dt": day},
        ["dt"],
        properties=contract.silver_properties,
    )
    quarantine_version = replace_partition(
        quarantine, cfg.table_path("quarantine", contract.name), {"dt": day}, ["dt"]
    )

    # The conservation figures are counted where the records are, not derived from one another:
    # read = bronze rows, accepted/quarantined = rows now in those tables, duplicates = labelled.
    by_label = labeled.groupBy("disposition", "rule").count().collect()

    def written(layer: str) -> int:
        return (
            read_table(spark, cfg.table_path(layer, contract.name)).filter(F.col("dt") == F.lit(day)).count()
        )

    counts = {
        "records_read": bronze.count(),
        "records_accepted": written("silver"),
        "records_quarantined": written("quarantine"),
        "records_duplicate": sum(r["count"] for r in by_label if r["disposition"] == "duplicate"),
    }
    rules = sorted(
        ((r["rule"], int(r["count"])) for r in by_label if r["disposition"] == "quarantined"),
        key=lambda kv: (-kv[1], kv[0]),
    )
    extra = labeled.select(F.explode("extra_fields").alias("field")).groupBy("field").count().collect()
    files = (
        read_table(spark, cfg.table_path("bronze", "landing_files"))
        .filter((F.col("dt") == F.lit(day)) & (F.col("source") == contract.name))
        .groupBy()
        .agg(
            F.count("*").alias("files_read"),
            F.count(F.when(F.col("status") == "accepted", 1)).alias("files_accepted"),
            F.count(F.when(F.col("status") == "quarantined", 1)).alias("files_quarantined"),
        )
        .first()
    )
    audit = {
        "dt": day,
        "source": contract.name,
        "files_read": int(files["files_read"] or 0),
        "files_accepted": int(files["files_accepted"] or 0),
        "files_quarantined": int(files["files_quarantined"] or 0),
        **counts,
        "extra_fields": {row["field"]: int(row["count"]) for row in sorted(extra, key=lambda r: r["field"])},
    }
    replace_partition(
        spark.createDataFrame([audit], AUDIT_SCHEMA),
        cfg.table_path("audit", "ingest_audit"),
        {"dt": day, "source": contract.name},
        ["dt"],
    )
    return {
        **audit,
        "quarantine_by_rule": dict(rules),
        "silver_version": silver_version,
        "quarantine_version": quarantine_version,
        "silver": silver,
        "quarantine": quarantine,
    }
