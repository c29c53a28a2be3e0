"""Dagster assets of the executive path: ``gold/order_reexposure`` and the four KPI tables.

Each body resolves the partition date ``D`` and resources, calls the steps and pure functions of
``assets.kpi`` (which apply the as-of rule for ``D``) and reports; checks are the GE suites of
``assets.kpi.checks``, run on the snapshot just written. ``gold/order_reexposure`` is a versioned
snapshot (``assets.kpi.steps``); the KPI tables write the ``as_of = D`` snapshot with
``replace_partition`` (older snapshots stay).
"""

import datetime as dt

from dagster import (
    AssetExecutionContext,
    AssetKey,
    AssetSpec,
    MaterializeResult,
    MetadataValue,
    multi_asset,
)
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from assets.finance.schemas import LEDGER_SCHEMA, SILVER_SCHEMAS
from assets.finance.steps import ad_fee_allocation_as_of, order_attribution_as_of
from assets.kpi.charts import kpi_chart_metadata
from assets.kpi.checks import kpi_reconciliation, kpi_suites, order_reexposure_suites, reconciliation_suites
from assets.kpi.metrics import KPI_TABLE_KEYS, KpiInputs, compute_kpi_tables
from assets.kpi.steps import order_reexposure_as_of, reexposure_table, run_order_reexposure
from assets.metadata import delta_metadata, preview
from assets.snapshots import check_frame
from assets.storage import read_or_empty, read_table, replace_partition
from pipelines.config import OnetrackConfig
from pipelines.instance import SNAPSHOT_POOL
from pipelines.partitions import daily_partitions, partition_date
from pipelines.resources import OnetrackSettings, SparkResource
from quality.checks import check_results, check_specs, checked_asset, require_whole_selection, selected_suites
from quality.runner import validations_dir

OWNERS = ["team:data-engineering"]

ORDER_ATTRIBUTION = AssetKey(["finance", "order_attribution"])
AD_FEE_ALLOCATION = AssetKey(["finance", "ad_fee_allocation"])
AD_FEE_REFUND_LEDGER = AssetKey(["finance", "ad_fee_refund_ledger"])
SILVER_RETURNS = AssetKey(["silver", "returns"])
SILVER_AD_SPEND = AssetKey(["silver", "ad_spend"])
SILVER_TRAFFIC = AssetKey(["silver", "traffic"])
ORDER_REEXPOSURE = AssetKey(["gold", "order_reexposure"])
KPI_ASSET_KEYS = {name: AssetKey(["gold", name]) for name in KPI_TABLE_KEYS}

_SETTINGS = OnetrackConfig.from_env()
REEXPOSURE_SUITES = order_reexposure_suites()
KPI_SUITES = kpi_suites(_SETTINGS)
RECONCILIATION_SUITES = reconciliation_suites()

KPI_DESCRIPTIONS = {
    "kpi_daily": "SPEC §8 KPIs per business day `dt` (the cohort of orders paid that day).",
    "kpi_merchant_daily": "SPEC §8 KPIs per (dt, merchant_id); spend by the campaign's advertiser_id.",
    "kpi_campaign_daily": "SPEC §8 campaign KPIs per (dt, campaign_id): delivery, attributed orders, fees.",
    "return_attribution_daily": (
        "SPEC §8/§9 returns per (dt, attributed_pool, reexposure): how lower-price re-exposure "
        "after purchase, by pool, relates to returns."
    ),
}
SNAPSHOT_NOTE = (
    " A run for D rewrites every day of [D-29, D] (restatement window), computed as of D and "
    "tagged as_of = D; older snapshots are kept."
)


def _snapshot(session: SparkSession, path: str, day: dt.date) -> DataFrame:
    return read_table(session, path).filter(F.col("as_of") == F.lit(day))


def read_kpi_inputs(session: SparkSession, cfg: OnetrackConfig, day: dt.date) -> KpiInputs:
    """The input tables (empty frames of the right schema for tables not written yet); of the
    versioned attribution, allocation and re-exposure, the snapshots as of ``day`` (computed from
    silver if none is stored)."""

    def table(layer: str, name: str, schema):
        return read_or_empty(session, cfg.table_path(layer, name), schema)

    return KpiInputs(
        order_attribution=order_attribution_as_of(session, cfg, day),
        ad_fee_allocation=ad_fee_allocation_as_of(session, cfg, day),
        ad_fee_refund_ledger=table("finance", "ad_fee_refund_ledger", LEDGER_SCHEMA),
        returns=table("silver", "returns", SILVER_SCHEMAS["returns"]),
        ad_spend=table("silver", "ad_spend", SILVER_SCHEMAS["ad_spend"]),
        order_reexposure=order_reexposure_as_of(session, cfg, day),
    )


@checked_asset(
    key=ORDER_REEXPOSURE,
    deps=[ORDER_ATTRIBUTION, SILVER_RETURNS, SILVER_TRAFFIC],
    group_name="gold",
    partitions_def=daily_partitions,
    owners=OWNERS,
    kinds={"spark", "delta"},
    tags={"layer": "gold"},
    description=(
        "SPEC §9 per paid order of finance/order_attribution (as_of = D): did the buyer see the same "
        "SPU cheaper within 7 days after paying and before the first return request, and in which "
        "pools (`reexposure`: none, ad, organic, both)."
    ),
    check_specs=check_specs(ORDER_REEXPOSURE, REEXPOSURE_SUITES),
    pool=SNAPSHOT_POOL,  # a versioned snapshot: its writes never interleave
)
def order_reexposure(context: AssetExecutionContext, spark: SparkResource, settings: OnetrackSettings):
    session, cfg, day = spark.get_session(), settings.get_config(), partition_date(context)
    written = run_order_reexposure(session, cfg, day)
    table = reexposure_table(session, cfg)
    snapshot = table.read(day)  # not cached: see finance/order_attribution
    by_class = {
        row["reexposure"]: int(row["count"]) for row in snapshot.groupBy("reexposure").count().collect()
    }
    base = written["base"]
    yield MaterializeResult(
        metadata={
            **delta_metadata(written["table_path"], written["version"], sum(by_class.values())),
            "orders_by_reexposure": MetadataValue.json(by_class),
            "computed_from": MetadataValue.text(
                f"as_of = {base.isoformat()}: {written['rows_written']} rows written, "
                f"{written['keys_removed']} keys removed"
                if base
                else "scratch (no usable earlier snapshot)"
            ),
            "preview": preview(snapshot.filter(F.col("reexposure") != "none")),
        }
    )
    if not selected_suites(context, ORDER_REEXPOSURE, REEXPOSURE_SUITES):
        return  # a run without the checks
    root = validations_dir(cfg.warehouse_dir)
    # the rows the day wrote when the snapshot it was built on passed (assets.snapshots.check_frame)
    checked, record = check_frame(table, day, written, [s.name for s in REEXPOSURE_SUITES], root)
    yield from check_results(
        ORDER_REEXPOSURE,
        checked,
        REEXPOSURE_SUITES,
        validations_root=root,
        partition=context.partition_key,
        context=context,
        record=record,
    )


def _trend_markdown(kpi_daily: DataFrame) -> MetadataValue:
    columns = ["dt", "orders", "payment_gmv", "settled_gmv", "settlement_rate", "ad_spend", "roi", "net_roi"]
    return preview(kpi_daily.select(*columns).orderBy(F.col("dt").desc()), rows=30)


@multi_asset(
    name="kpi_tables",
    partitions_def=daily_partitions,
    specs=[
        AssetSpec(
            key,
            deps=[
                ORDER_REEXPOSURE,
                ORDER_ATTRIBUTION,
                AD_FEE_ALLOCATION,
                AD_FEE_REFUND_LEDGER,
                SILVER_RETURNS,
                SILVER_AD_SPEND,
            ],
            group_name="gold",
            owners=OWNERS,
            kinds={"spark", "delta"},
            tags={"layer": "gold"},
            description=KPI_DESCRIPTIONS[name] + SNAPSHOT_NOTE,
        )
        for name, key in KPI_ASSET_KEYS.items()
    ],
    check_specs=[
        spec
        for name, key in KPI_ASSET_KEYS.items()
        for spec in check_specs(
            key, KPI_SUITES[name] + (RECONCILIATION_SUITES if name == "kpi_daily" else [])
        )
    ],
    can_subset=True,  # so that a run can leave the checks out (quality.checks.checked_asset)
)
def kpi_tables(context: AssetExecutionContext, spark: SparkResource, settings: OnetrackSettings):
    require_whole_selection(context, KPI_ASSET_KEYS.values())
    session, cfg, day = spark.get_session(), settings.get_config(), partition_date(context)
    inputs = read_kpi_inputs(session, cfg, day)
    frames = compute_kpi_tables(inputs, day, cfg)

    written: dict[str, DataFrame] = {}
    versions: dict[str, int] = {}
    for name, frame in frames.items():
        path = cfg.table_path("gold", name)
        versions[name] = replace_partition(frame, path, {"as_of": day})
        written[name] = _snapshot(session, path, day).cache()

    charts = kpi_chart_metadata(written["kpi_daily"], written["return_attribution_daily"], day)
    for name, snapshot in written.items():
        metadata = {
            **delta_metadata(cfg.table_path("gold", name), versions[name], snapshot.count()),
            "as_of": MetadataValue.text(day.isoformat()),
            "preview": preview(snapshot.orderBy(F.col("dt").desc())),
        }
        if name == "kpi_daily":
            metadata["trend"] = _trend_markdown(snapshot)
            today = snapshot.filter(F.col("dt") == F.lit(day)).first()
            if today is not None:  # numbers of the newest cohort, plotted across partitions
                metadata["orders_of_D"] = MetadataValue.int(int(today["orders"]))
                metadata["payment_gmv_of_D"] = MetadataValue.float(float(today["payment_gmv"]))
                metadata["ad_spend_of_D"] = MetadataValue.float(float(today["ad_spend"]))
        metadata.update(charts.get(name, {}))  # GMV by pool, ROI, return rate vs re-exposure
        yield MaterializeResult(asset_key=KPI_ASSET_KEYS[name], metadata=metadata)

    root, part = validations_dir(cfg.warehouse_dir), context.partition_key
    for name, snapshot in written.items():
        yield from check_results(
            KPI_ASSET_KEYS[name],
            snapshot,
            KPI_SUITES[name],
            validations_root=root,
            partition=part,
            context=context,
        )
    yield from check_results(
        KPI_ASSET_KEYS["kpi_daily"],
        kpi_reconciliation(written),
        RECONCILIATION_SUITES,
        validations_root=root,
        partition=part,
        context=context,
    )
    for snapshot in written.values():
        snapshot.unpersist()


KPI_ASSETS = [order_reexposure, kpi_tables]
