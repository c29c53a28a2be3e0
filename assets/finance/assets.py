"""Dagster assets of the finance path: attribution -> allocation -> refund ledger -> settlement files.

Each body resolves the partition date D and the resources, calls a step of
``assets.finance.steps`` / ``ledger`` / ``settlement_files`` and reports; checks are the GE suites
of ``assets.finance.checks``. The ledger's critical checks are blocking, so within a run the
settlement files are not published from a ledger that broke a rule.
"""

from dagster import (
    AssetCheckKey,
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetExecutionContext,
    AssetKey,
    MaterializeResult,
    MetadataValue,
)

from assets.finance.checks import (
    AD_FEE_ALLOCATION_SUITES,
    AD_FEE_REFUND_LEDGER_SUITES,
    LEDGER_SCOPE_SUITES,
    ORDER_ATTRIBUTION_SUITES,
)
from assets.finance.ledger import (
    LEDGER_TABLE,
    allocation_table,
    attribution_table,
    read_silver,
    returns_out_of_scope,
    run_ledger_through,
)
from assets.finance.settlement_files import publish_settlement_day, verify_day
from assets.finance.steps import (
    ledger_check_frame,
    ledger_through,
    run_ad_fee_allocation,
    run_order_attribution,
)
from assets.metadata import delta_metadata, preview
from assets.snapshots import check_frame
from pipelines.instance import SNAPSHOT_POOL
from pipelines.partitions import daily_partitions, partition_date
from pipelines.resources import OnetrackSettings, SparkResource
from quality.checks import check_results, check_specs, checked_asset, selected_suites
from quality.runner import validations_dir

OWNERS = ["team:finance-data"]

SILVER = {name: AssetKey(["silver", name]) for name in ("orders", "returns", "ad_spend", "traffic")}
ORDER_ATTRIBUTION = AssetKey(["finance", "order_attribution"])
AD_FEE_ALLOCATION = AssetKey(["finance", "ad_fee_allocation"])
AD_FEE_REFUND_LEDGER = AssetKey(["finance", "ad_fee_refund_ledger"])
SETTLEMENT_FILES = AssetKey(["finance", "settlement_files"])
SETTLEMENT_CHECK = "settlement_files_match_manifest"


@checked_asset(
    key=ORDER_ATTRIBUTION,
    deps=[SILVER["orders"], SILVER["traffic"]],
    group_name="finance",
    partitions_def=daily_partitions,
    owners=OWNERS,
    kinds={"spark", "delta"},
    tags={"layer": "finance"},
    # A versioned snapshot (one table, a version per day): one write at a time (see the ledger).
    pool=SNAPSHOT_POOL,
    description=(
        "SPEC §4: paid orders (latest version as of D, paid in the lookback window) with their last "
        "click within the attribution window across both pools (ties: ad, then smallest event_id), "
        "or `direct`. Versioned: the snapshot as of D is the table version the run for D committed "
        "(audit/snapshot_versions)."
    ),
    check_specs=check_specs(ORDER_ATTRIBUTION, ORDER_ATTRIBUTION_SUITES),
)
def order_attribution(context: AssetExecutionContext, spark: SparkResource, settings: OnetrackSettings):
    session, cfg, day = spark.get_session(), settings.get_config(), partition_date(context)
    written = run_order_attribution(session, cfg, day)
    # Not cached: the snapshot holds the whole scope, and building an in-memory copy of it costs
    # more than the few column-pruned scans of the metadata and the one GE validation (measured:
    # BENCHMARKS.md, "caching the snapshots").
    table = attribution_table(session, cfg)
    df = table.read(day)
    by_pool = {r["attributed_pool"]: r["count"] for r in df.groupBy("attributed_pool").count().collect()}
    computed = "scratch (no usable earlier snapshot)"
    if written["base"] is not None:
        computed = (
            f"changes from as_of = {written['base'].isoformat()}: {written['rows_written']} rows "
            f"written, {written['keys_removed']} orders removed"
        )
    yield MaterializeResult(
        metadata={
            **delta_metadata(written["table_path"], written["delta_version"], sum(by_pool.values())),
            "orders_by_pool": MetadataValue.json(by_pool),
            "computed_from": MetadataValue.text(computed),
            "preview": preview(df),
        }
    )
    if not selected_suites(context, ORDER_ATTRIBUTION, ORDER_ATTRIBUTION_SUITES):
        return  # a run without the checks
    root = validations_dir(cfg.warehouse_dir)
    # the rows the day wrote when the snapshot it was built on passed (assets.snapshots.check_frame)
    checked, record = check_frame(table, day, written, [s.name for s in ORDER_ATTRIBUTION_SUITES], root)
    yield from check_results(
        ORDER_ATTRIBUTION,
        checked,
        ORDER_ATTRIBUTION_SUITES,
        validations_root=root,
        partition=context.partition_key,
        context=context,
        record=record,
    )


@checked_asset(
    key=AD_FEE_ALLOCATION,
    deps=[ORDER_ATTRIBUTION, SILVER["ad_spend"]],
    group_name="finance",
    partitions_def=daily_partitions,
    owners=OWNERS,
    kinds={"spark", "delta"},
    tags={"layer": "finance"},
    description=(
        "SPEC §5: each campaign-day's spend (after restatement) split over its attributed orders "
        "by largest remainder, to the fen; spend without attributed orders kept as unattributed. "
        "Versioned like the attribution: the snapshot as of D is the table version the run for D "
        "committed (audit/snapshot_versions)."
    ),
    check_specs=check_specs(AD_FEE_ALLOCATION, AD_FEE_ALLOCATION_SUITES),
    pool=SNAPSHOT_POOL,  # a versioned snapshot, as the attribution
)
def ad_fee_allocation(context: AssetExecutionContext, spark: SparkResource, settings: OnetrackSettings):
    session, cfg, day = spark.get_session(), settings.get_config(), partition_date(context)
    written = run_ad_fee_allocation(session, cfg, day)
    table = allocation_table(session, cfg)
    df = table.read(day)  # not cached: see order_attribution
    totals = df.selectExpr(
        "count(order_id) AS order_rows",
        "count(1) - count(order_id) AS unattributed_campaign_days",
        "coalesce(sum(allocated_ad_fee), 0) AS allocated_ad_fee",
        "coalesce(sum(unattributed_spend), 0) AS unattributed_spend",
    ).first()
    computed = "scratch (no usable earlier snapshot)"
    if written["base"] is not None:
        computed = (
            f"changes from as_of = {written['base'].isoformat()}: {written['rows_written']} rows "
            f"written (the campaign-days allocated again), {written['keys_removed']} keys removed"
        )
    yield MaterializeResult(
        metadata={
            **delta_metadata(written["table_path"], written["delta_version"], totals["order_rows"]),
            "unattributed_campaign_days": int(totals["unattributed_campaign_days"]),
            "allocated_ad_fee": MetadataValue.text(f"{totals['allocated_ad_fee']:.2f}"),
            "unattributed_spend": MetadataValue.text(f"{totals['unattributed_spend']:.2f}"),
            "computed_from": MetadataValue.text(computed),
            "preview": preview(df),
        }
    )
    if not selected_suites(context, AD_FEE_ALLOCATION, AD_FEE_ALLOCATION_SUITES):
        return  # a run without the checks
    root = validations_dir(cfg.warehouse_dir)
    # The rows the day wrote when the snapshot it was built on passed (assets.snapshots.check_frame):
    # they are whole campaign-days, so the per-campaign-day sum rule holds on the snapshot too.
    checked, record = check_frame(table, day, written, [s.name for s in AD_FEE_ALLOCATION_SUITES], root)
    yield from check_results(
        AD_FEE_ALLOCATION,
        checked,
        AD_FEE_ALLOCATION_SUITES,
        validations_root=root,
        partition=context.partition_key,
        context=context,
        record=record,
    )


@checked_asset(
    key=AD_FEE_REFUND_LEDGER,
    # The ledger recomputes attribution and fees as of each settlement date from silver; the
    # dependency on the allocation orders the run and lets its blocking checks stop the ledger.
    deps=[AD_FEE_ALLOCATION, SILVER["orders"], SILVER["returns"], SILVER["traffic"], SILVER["ad_spend"]],
    group_name="finance",
    partitions_def=daily_partitions,
    owners=OWNERS,
    kinds={"spark", "delta"},
    tags={"layer": "finance"},
    # Days build on earlier days: one ledger step at a time (limit the pool in the instance).
    pool="onetrack_finance_ledger",
    description=(
        "SPEC §6: ad-fee refunds of eligible returns, each settled once on the first landing date "
        "it is seen eligible, capped per order; reversals when a settled return stops being "
        "refunded. Partition `settlement_date = D`; missing earlier dates are computed first, so "
        "the ledger does not depend on the order partitions run in."
    ),
    check_specs=check_specs(AD_FEE_REFUND_LEDGER, AD_FEE_REFUND_LEDGER_SUITES + LEDGER_SCOPE_SUITES),
)
def ad_fee_refund_ledger(context: AssetExecutionContext, spark: SparkResource, settings: OnetrackSettings):
    session, cfg, day = spark.get_session(), settings.get_config(), partition_date(context)
    summary = run_ledger_through(session, cfg, day)
    if summary["days_computed"][:-1]:
        context.log.info(f"ledger: also computed earlier settlement dates {summary['days_computed'][:-1]}")
    ledger = ledger_through(session, cfg, day)
    day_rows = ledger.filter(f"settlement_date = DATE'{day.isoformat()}'")
    yield MaterializeResult(
        metadata={
            **delta_metadata(cfg.table_path(*LEDGER_TABLE), summary["ledger_version"], summary["entries"]),
            "refunds": summary["refunds"],
            "reversals": summary["reversals"],
            "ad_fee_refund": MetadataValue.text(summary["ad_fee_refund"]),
            "days_computed": MetadataValue.json(summary["days_computed"]),
            "days_written": MetadataValue.json(summary["days_written"]),
            "rewritten": summary["rewritten"],
            "preview": preview(day_rows),
        }
    )
    root = validations_dir(cfg.warehouse_dir)
    if selected_suites(context, AD_FEE_REFUND_LEDGER, AD_FEE_REFUND_LEDGER_SUITES):
        # the entries of D's orders when the ledger through D - 1 passed (ledger_check_frame)
        names = [s.name for s in AD_FEE_REFUND_LEDGER_SUITES]
        checked, record = ledger_check_frame(session, cfg, day, names, root)
        checked = checked.cache()
        yield from check_results(
            AD_FEE_REFUND_LEDGER,
            checked,
            AD_FEE_REFUND_LEDGER_SUITES,
            validations_root=root,
            partition=context.partition_key,
            context=context,
            record=record,
        )
        checked.unpersist()
    if selected_suites(context, AD_FEE_REFUND_LEDGER, LEDGER_SCOPE_SUITES):
        silver = read_silver(session, cfg)
        out_of_scope = returns_out_of_scope(silver["orders"], silver["returns"], ledger, day, cfg).cache()
        yield from check_results(
            AD_FEE_REFUND_LEDGER,
            out_of_scope,
            LEDGER_SCOPE_SUITES,
            validations_root=root,
            partition=context.partition_key,
            context=context,
        )
        out_of_scope.unpersist()


@checked_asset(
    key=SETTLEMENT_FILES,
    deps=[AD_FEE_REFUND_LEDGER],
    group_name="finance",
    partitions_def=daily_partitions,
    owners=OWNERS,
    kinds={"csv"},
    tags={"layer": "finance"},
    description=(
        "SPEC §7: `<settlements>/dt=D/ad_fee_refunds_D.csv`, `merchant_summary_D.csv` and "
        "`manifest.json`, published atomically; a regeneration must be byte-identical or fails."
    ),
    check_specs=[
        AssetCheckSpec(
            SETTLEMENT_CHECK,
            asset=SETTLEMENT_FILES,
            description="Every published file matches the manifest (sha256, rows, amount total).",
        )
    ],
)
def settlement_files(context: AssetExecutionContext, spark: SparkResource, settings: OnetrackSettings):
    session, cfg, day = spark.get_session(), settings.get_config(), partition_date(context)
    manifest = publish_settlement_day(session, cfg, day)
    folder = f"{cfg.settlement_dir}/dt={day.isoformat()}"
    files = {f["name"]: f for f in manifest["files"]}
    yield MaterializeResult(
        metadata={
            "path": MetadataValue.path(folder),
            "status": manifest["status"],
            "files": MetadataValue.md(
                "| file | rows | amount_total | sha256 |\n|---|---|---|---|\n"
                + "\n".join(
                    f"| {n} | {f['rows']} | {f['amount_total']} | `{f['sha256'][:16]}…` |"
                    for n, f in files.items()
                )
            ),
            "source_tables": MetadataValue.json(manifest["run"]["source_tables"]),
        }
    )
    if AssetCheckKey(SETTLEMENT_FILES, SETTLEMENT_CHECK) not in context.selected_asset_check_keys:
        return  # a run without the checks
    problems = verify_day(cfg.settlement_dir, day)
    yield AssetCheckResult(
        check_name=SETTLEMENT_CHECK,
        asset_key=SETTLEMENT_FILES,
        passed=not problems,
        severity=AssetCheckSeverity.ERROR,
        metadata={"problems": MetadataValue.md("\n".join(f"- {p}" for p in problems) or "_none_")},
    )


FINANCE_ASSETS = [order_attribution, ad_fee_allocation, ad_fee_refund_ledger, settlement_files]
