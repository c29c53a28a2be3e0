"""Dagster assets of the ingestion half: per source, bronze -> silver + quarantine.

Each asset body only resolves the partition and resources, calls a step of
``assets.ingest.steps`` and reports; the checks are the GE suites of ``assets.ingest.checks``.
"""

from dagster import (
    AssetExecutionContext,
    AssetKey,
    AssetSpec,
    MaterializeResult,
    MetadataValue,
    multi_asset,
)
from pyspark.sql import functions as F

from assets.ingest.checks import audit_suites, bronze_suites, quarantine_suites, silver_suites
from assets.ingest.contracts import CONTRACTS, SourceContract
from assets.ingest.steps import ingest_bronze, ingest_silver
from assets.metadata import delta_metadata, preview
from assets.storage import read_table
from pipelines.partitions import daily_partitions, partition_date
from pipelines.resources import OnetrackSettings, SparkResource
from quality.checks import check_results, check_specs, checked_asset, require_whole_selection

OWNERS = ["team:data-engineering"]

FORMATS = {"jsonl": "JSON Lines", "csv": "CSV", "parquet": "Parquet"}


def validations_root(cfg) -> str:
    return f"{cfg.warehouse_dir}/quality/validations"


def build_bronze_asset(contract: SourceContract):
    key = AssetKey(["bronze", contract.name])
    suites = bronze_suites(contract)

    @checked_asset(
        key=key,
        group_name="bronze",
        partitions_def=daily_partitions,
        owners=OWNERS,
        kinds={"spark", "delta"},
        tags={"layer": "bronze", "source": contract.name},
        description=(
            f"`{contract.name}` records as landed ({FORMATS[contract.fmt]} files under "
            f"`<landing>/{contract.name}/dt=D/`), one row per record with its file and line. "
            "Unreadable files are recorded in `bronze/landing_files` and quarantined whole."
        ),
        check_specs=check_specs(key, suites),
    )
    def _bronze(context: AssetExecutionContext, spark: SparkResource, settings: OnetrackSettings):
        session, cfg, day = spark.get_session(), settings.get_config(), partition_date(context)
        figures = ingest_bronze(session, cfg, contract, day)
        if figures["files_read"] == 0:
            context.log.warning(f"no {contract.name} files landed for dt={day}")
        # Not cached: the checks read a few narrow columns of the partition just written, which
        # column-pruned scans of its files give faster than caching every record's field map
        # (traffic at M: 3.2-4.8 s against 6.6-13.5 s a validation).
        bronze = read_table(session, figures["table_path"]).filter(F.col("dt") == F.lit(day))
        yield MaterializeResult(
            metadata={
                **delta_metadata(figures["table_path"], figures["delta_version"], figures["records_read"]),
                "files_read": figures["files_read"],
                "files_quarantined": figures["files_quarantined"],
                "quarantined_files": MetadataValue.md(
                    "\n".join(f"- {f}" for f in figures["quarantined_files"]) or "_none_"
                ),
                "preview": preview(bronze.drop("fields")),
            }
        )
        yield from check_results(
            key,
            bronze,
            suites,
            validations_root=validations_root(cfg),
            partition=context.partition_key,
            context=context,
        )

    return _bronze


def build_silver_asset(contract: SourceContract):
    bronze_key = AssetKey(["bronze", contract.name])
    silver_key = AssetKey(["silver", contract.name])
    quarantine_key = AssetKey(["quarantine", contract.name])
    silver_checks, audit_checks, quarantine_checks = (
        silver_suites(contract),
        audit_suites(contract),
        quarantine_suites(contract),
    )

    @multi_asset(
        name=f"validate_{contract.name}",
        partitions_def=daily_partitions,
        specs=[
            AssetSpec(
                silver_key,
                deps=[bronze_key],
                group_name="silver",
                owners=OWNERS,
                kinds={"spark", "delta"},
                tags={"layer": "silver", "source": contract.name},
                description=(
                    f"Accepted `{contract.name}` record versions: typed per SPEC §2, exact duplicates "
                    "removed (against this and all earlier landing partitions). The latest version "
                    "per key as of a date is applied when reading (`dt <= D`)."
                ),
            ),
            AssetSpec(
                quarantine_key,
                deps=[bronze_key],
                group_name="quarantine",
                owners=OWNERS,
                kinds={"spark", "delta"},
                tags={"layer": "quarantine", "source": contract.name},
                description=(
                    f"`{contract.name}` records that broke a SPEC §2 rule: the raw record, its landing "
                    "file and line, the first rule broken and every violation."
                ),
            ),
        ],
        check_specs=check_specs(silver_key, silver_checks + audit_checks)
        + check_specs(quarantine_key, quarantine_checks),
        can_subset=True,  # so that a run can leave the checks out (quality.checks.checked_asset)
    )
    def _validate(context: AssetExecutionContext, spark: SparkResource, settings: OnetrackSettings):
        require_whole_selection(context, [silver_key, quarantine_key])
        session, cfg, day = spark.get_session(), settings.get_config(), partition_date(context)
        figures = ingest_silver(session, cfg, contract, day)
        silver, quarantine = figures.pop("silver"), figures.pop("quarantine").cache()
        audit = read_table(session, cfg.table_path("audit", "ingest_audit")).filter(
            (F.col("dt") == F.lit(day)) & (F.col("source") == contract.name)
        )
        counts = {
            k: figures[k]
            for k in ("records_read", "records_accepted", "records_quarantined", "records_duplicate")
        }
        yield MaterializeResult(
            asset_key=silver_key,
            metadata={
                **delta_metadata(cfg.table_path("silver", contract.name), figures["silver_version"]),
                **counts,
                "rows": figures["records_accepted"],
                "files_read": figures["files_read"],
                "files_quarantined": figures["files_quarantined"],
                "extra_fields": MetadataValue.json(figures["extra_fields"]),
                "preview": preview(silver),
            },
        )
        yield MaterializeResult(
            asset_key=quarantine_key,
            metadata={
                **delta_metadata(cfg.table_path("quarantine", contract.name), figures["quarantine_version"]),
                "rows": figures["records_quarantined"],
                "quarantine_by_rule": MetadataValue.json(figures["quarantine_by_rule"]),
                "preview": preview(quarantine),
            },
        )
        root, part = validations_root(cfg), context.partition_key
        yield from check_results(
            silver_key, silver, silver_checks, validations_root=root, partition=part, context=context
        )
        yield from check_results(
            silver_key, audit, audit_checks, validations_root=root, partition=part, context=context
        )
        yield from check_results(
            quarantine_key,
            quarantine,
            quarantine_checks,
            validations_root=root,
            partition=part,
            context=context,
        )
        quarantine.unpersist()

    return _validate


INGEST_ASSETS = [build(c) for c in CONTRACTS.values() for build in (build_bronze_asset, build_silver_asset)]
