"""Missing landing data, flagged per source and day: the asset check ``<source>_landed``.

A bronze partition materializes even when its landing folder is empty or holds only unreadable
files (nothing to ingest is not an error of the pipeline), so the UI needs a separate signal: the
check ``bronze/<source>:<source>_landed`` (severity WARN, non-blocking) fails when the folder
``<landing>/<source>/dt=D/`` had no readable file, i.e. no file that ``bronze/landing_files``
lists as ``accepted`` for that source and day. Its metadata gives the figures (files landed,
readable, unreadable with their errors, records in readable files).

The check is partitioned like the assets and reads only what the bronze step recorded for the
check's own partition ``D``, so it gives the right answer for the latest day as for any backfilled
old day, and it is part of the daily job (``selection="*"``), the schedule, the landing sensor's
runs and UI backfills.
"""

import datetime as dt

from dagster import (
    AssetCheckExecutionContext,
    AssetCheckResult,
    AssetCheckSeverity,
    AssetKey,
    MetadataValue,
    asset_check,
)
from pyspark.sql import functions as F

from assets.ingest.bronze import FILES_SCHEMA
from assets.ingest.contracts import CONTRACTS, SourceContract
from assets.storage import read_or_empty
from pipelines.partitions import daily_partitions, partition_date
from pipelines.resources import OnetrackSettings, SparkResource

ACCEPTED = "accepted"


def landed_check_name(source: str) -> str:
    return f"{source}_landed"


def landing_figures(files: list[dict]) -> dict:
    """Figures of one landing folder from its ``bronze/landing_files`` rows (plain dicts with
    ``source_file, status, error, records``): ``passed`` is whether at least one file was readable."""
    readable = [f for f in files if f["status"] == ACCEPTED]
    unreadable = sorted((f for f in files if f["status"] != ACCEPTED), key=lambda f: f["source_file"])
    return {
        "passed": bool(readable),
        "files_landed": len(files),
        "files_readable": len(readable),
        "files_unreadable": len(unreadable),
        "records_in_readable_files": sum(int(f["records"] or 0) for f in readable),
        "unreadable_files": [f"{f['source_file']}: {f['error']}" for f in unreadable],
    }


def landed_summary(source: str, day: dt.date, figures: dict) -> str:
    if figures["passed"]:
        return f"{figures['files_readable']} readable {source} file(s) landed for dt={day}"
    if figures["files_landed"] == 0:
        return f"no {source} files landed for dt={day}"
    return f"{figures['files_landed']} {source} file(s) landed for dt={day}, none readable"


def landed_check_result(source: str, day: dt.date, folder: str, files: list[dict]) -> AssetCheckResult:
    figures = landing_figures(files)
    return AssetCheckResult(
        passed=figures["passed"],
        severity=AssetCheckSeverity.WARN,
        description=landed_summary(source, day, figures),
        metadata={
            "dt": MetadataValue.text(day.isoformat()),
            "landing_folder": MetadataValue.path(folder),
            "files_landed": MetadataValue.int(figures["files_landed"]),
            "files_readable": MetadataValue.int(figures["files_readable"]),
            "files_unreadable": MetadataValue.int(figures["files_unreadable"]),
            "records_in_readable_files": MetadataValue.int(figures["records_in_readable_files"]),
            "unreadable_files": MetadataValue.md(
                "\n".join(f"- `{line}`" for line in figures["unreadable_files"]) or "_none_"
            ),
        },
    )


def build_landed_check(contract: SourceContract):
    source = contract.name

    @asset_check(
        asset=AssetKey(["bronze", source]),
        name=landed_check_name(source),
        partitions_def=daily_partitions,
        blocking=False,
        description=(
            f"Warns when no readable `{source}` file landed for the day "
            f"(`<landing>/{source}/dt=D/` empty, missing, or only unreadable files): missing landing "
            "data. Non-blocking; the figures are in the metadata."
        ),
    )
    def _landed(context: AssetCheckExecutionContext, spark: SparkResource, settings: OnetrackSettings):
        session, cfg, day = spark.get_session(), settings.get_config(), partition_date(context)
        rows = (
            read_or_empty(session, cfg.table_path("bronze", "landing_files"), FILES_SCHEMA)
            .filter((F.col("dt") == F.lit(day)) & (F.col("source") == F.lit(source)))
            .select("source_file", "status", "error", "records")
            .collect()  # one row per file of one folder
        )
        folder = f"{cfg.landing_dir}/{source}/dt={day.isoformat()}"
        return landed_check_result(source, day, folder, [r.asDict() for r in rows])

    return _landed


LANDED_CHECKS = [build_landed_check(contract) for contract in CONTRACTS.values()]
