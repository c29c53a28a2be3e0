"""The maintenance job: compact (OPTIMIZE) and VACUUM every Delta table, weekly.

The logic is :mod:`assets.maintenance`; this module only wires it into Dagster. Runs go through
the same run queue as the daily runs (one at a time), so compaction never races a daily write.
"""

import os

from dagster import MetadataValue, OpExecutionContext, Output, ScheduleDefinition, job, op

from assets.maintenance import maintain_warehouse
from pipelines.config import BUSINESS_TZ
from pipelines.resources import OnetrackSettings, SparkResource


@op(description="OPTIMIZE (compaction) then VACUUM of every table under the warehouse.")
def compact_and_vacuum(context: OpExecutionContext, spark: SparkResource, settings: OnetrackSettings):
    cfg = settings.get_config()
    retain = cfg.vacuum_retain_hours
    results = maintain_warehouse(
        spark.get_session(),
        cfg.warehouse_dir,
        retain_hours=retain,
        log=context.log.info,
        parallelism=cfg.maintenance_parallelism,
    )
    rows = "\n".join(
        f"| {r['table'].rsplit('/', 2)[-2]}/{r['table'].rsplit('/', 1)[-1]} "
        f"| {r['files_before']} | {r['files_after']} |"
        for r in results
    )
    yield Output(
        len(results),
        metadata={
            "tables": len(results),
            "files_before": sum(r["files_before"] for r in results),
            "files_after": sum(r["files_after"] for r in results),
            # partitions of the tables split by value (silver/traffic) compacted value by value
            "partitions_resplit": sum(len(r["rewritten_partitions"]) for r in results),
            "retain_hours": retain,
            "parallelism": cfg.maintenance_parallelism,
            "by_table": MetadataValue.md("| table | files before | files after |\n|---|---:|---:|\n" + rows),
        },
    )


@job(name="onetrack_maintenance", description="Weekly Delta compaction and VACUUM of every table.")
def maintenance_job():
    compact_and_vacuum()


maintenance_schedule = ScheduleDefinition(
    name="onetrack_maintenance_schedule",
    job=maintenance_job,
    cron_schedule=os.environ.get("ONETRACK_MAINTENANCE_CRON", "0 4 * * 0"),  # Sunday 04:00
    execution_timezone=BUSINESS_TZ,
    description="Compacts and vacuums every Delta table (OPTIMIZE + VACUUM), Sundays 04:00 Asia/Shanghai.",
)
