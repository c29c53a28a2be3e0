"""Dagster asset ``serving/kpi_duckdb``: the executives' DuckDB file (SPEC §10)."""

import duckdb
from dagster import AssetExecutionContext, AssetKey, MaterializeResult, MetadataValue

from assets.serving.checks import SERVING_SUITES, expected_row_counts, row_count_frame, served_row_counts
from assets.serving.publish import (
    NO_AUTOLOAD,
    SERVING_SOURCES,
    is_delta_table,
    publish_kpi_duckdb,
    spark_arrow_sources,
)
from assets.storage import table_version
from pipelines.partitions import daily_partitions
from pipelines.resources import OnetrackSettings, SparkResource
from quality.checks import check_results, check_specs, checked_asset, selected_suites
from quality.runner import validations_dir

KPI_DUCKDB = AssetKey(["serving", "kpi_duckdb"])
SOURCE_KEYS = [AssetKey([layer, table]) for layer, table in SERVING_SOURCES.values()]


def _latest_days_markdown(path: str, days: int = 7) -> MetadataValue:
    with duckdb.connect(path, read_only=True, config=NO_AUTOLOAD) as con:
        rows = con.execute(
            "SELECT dt, as_of, orders, payment_gmv, settled_gmv, settlement_rate, ad_spend, roi, net_roi "
            "FROM kpi_daily ORDER BY dt DESC LIMIT ?",
            [days],
        ).fetchall()
        columns = [d[0] for d in con.description]
    if not rows:
        return MetadataValue.md("_no rows_")
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join("" if v is None else str(v) for v in row) + " |" for row in rows]
    return MetadataValue.md("\n".join(lines))


@checked_asset(
    key=KPI_DUCKDB,
    deps=SOURCE_KEYS,
    group_name="serving",
    partitions_def=daily_partitions,
    owners=["team:data-engineering"],
    kinds={"duckdb"},
    tags={"layer": "serving"},
    description=(
        "`<warehouse>/serving/kpi.duckdb`: kpi_daily, kpi_merchant_daily, kpi_campaign_daily, "
        "return_attribution_daily (latest as_of per key) and the full ad_fee_refund_ledger, as plain "
        "tables a read-only `duckdb` client opens without extensions. Built from sql/serving/*.sql "
        "into a temporary file and swapped in atomically."
    ),
    check_specs=check_specs(KPI_DUCKDB, SERVING_SUITES),
)
def kpi_duckdb(context: AssetExecutionContext, spark: SparkResource, settings: OnetrackSettings):
    session, cfg = spark.get_session(), settings.get_config()
    warehouse = cfg.warehouse_dir
    try:
        result = publish_kpi_duckdb(warehouse)
    except duckdb.Error as error:
        context.log.warning(f"delta_scan could not read the Delta tables ({error}); reading them with Spark")
        result = publish_kpi_duckdb(warehouse, arrow_sources=spark_arrow_sources(session, warehouse))

    source_versions = {
        f"{layer}/{table}": table_version(session, f"{warehouse}/{layer}/{table}")
        for layer, table in SERVING_SOURCES.values()
        if is_delta_table(f"{warehouse}/{layer}/{table}")
    }
    served = served_row_counts(result.path)
    yield MaterializeResult(
        metadata={
            "path": MetadataValue.path(result.path),
            **{f"rows_{table}": MetadataValue.int(count) for table, count in served.items()},
            "source_delta_versions": MetadataValue.json(source_versions),
            "source_reader": MetadataValue.json(result.source_reader),
            "latest_days": _latest_days_markdown(result.path),
        }
    )
    if not selected_suites(context, KPI_DUCKDB, SERVING_SUITES):
        return  # a run without the checks: the expected counts are read only for them
    # counted by the reader the publish used (Spark only when delta_scan could not read the tables)
    spark_read = "arrow" in result.source_reader.values()
    expected = expected_row_counts(warehouse, session if spark_read else None)
    counts = row_count_frame(session, served, expected)
    yield from check_results(
        KPI_DUCKDB,
        counts,
        SERVING_SUITES,
        validations_root=validations_dir(warehouse),
        partition=context.partition_key,
        context=context,
    )


SERVING_ASSETS = [kpi_duckdb]
