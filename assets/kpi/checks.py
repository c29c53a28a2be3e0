"""Great Expectations suites guarding the executive path (gold re-exposure and KPI tables).

Each suite runs on the snapshot a run just wrote (``as_of = D``), so "unique key" means one row
per key per snapshot. Suites are built by functions taking the configuration, so the window
checks follow the restatement and settlement windows.
"""

from __future__ import annotations

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from assets.kpi.metrics import KPI_TABLE_KEYS, table_schema
from assets.kpi.reexposure import ORDER_REEXPOSURE_SCHEMA, REEXPOSURE_VALUES
from pipelines.config import OnetrackConfig
from quality.suites import Suite, between, equation_suite, in_set, not_null, schema_expectations, unique_key

POOLS = ("ad", "organic", "direct")
DEFAULTS = OnetrackConfig()

# --- gold/order_reexposure -------------------------------------------------------------------------


def order_reexposure_suites() -> list[Suite]:
    return [
        Suite(
            name="gold_order_reexposure_contract",
            description="One row per paid order of the snapshot; reexposure is none, ad, organic or both.",
            expectations=lambda: [
                *schema_expectations(ORDER_REEXPOSURE_SCHEMA),
                *unique_key(["order_id"]),
                *not_null(
                    ["paid_at", "paid_date", "reexposure", "as_of", "ad_exposures", "organic_exposures"]
                ),
                *in_set("reexposure", REEXPOSURE_VALUES),
                *between("ad_exposures", 0),
                *between("organic_exposures", 0),
            ],
            example_columns=("order_id",),
        ),
        equation_suite(
            "gold_order_reexposure_classes",
            "The class is the set of pools with at least one qualifying exposure.",
            {
                "class_matches_counts": (
                    "reexposure = CASE WHEN ad_exposures > 0 AND organic_exposures > 0 THEN 'both' "
                    "WHEN ad_exposures > 0 THEN 'ad' "
                    "WHEN organic_exposures > 0 THEN 'organic' ELSE 'none' END"
                ),
            },
            example_columns=["order_id"],
        ),
    ]


# --- the four KPI tables ---------------------------------------------------------------------------


def _window_condition(restatement_window_days: int) -> str:
    return f"dt BETWEEN date_sub(as_of, {restatement_window_days - 1}) AND as_of"


def _contract_suite(table: str, extra: list) -> Suite:
    keys = list(KPI_TABLE_KEYS[table])
    schema = table_schema(table)
    return Suite(
        name=f"gold_{table}_contract",
        description=(
            f"SPEC §8 columns and types, one row per ({', '.join(keys)}) in the snapshot, "
            "ratios within their bounds."
        ),
        expectations=lambda: [
            *schema_expectations(schema),
            *unique_key(keys),
            *not_null(["as_of"]),
            *extra,
        ],
        example_columns=tuple(keys),
    )


def _kpi_rules(table: str, cfg: OnetrackConfig) -> Suite:
    return equation_suite(
        f"gold_{table}_rules",
        "Amounts add up: pools partition payment_gmv, settled <= paid, counts and subsidies nest; "
        "rows only for days of the restatement window.",
        {
            "pools_add_up_to_payment_gmv": "gmv_ad + gmv_organic + gmv_direct = payment_gmv",
            "settled_gmv_at_most_payment_gmv": "settled_gmv <= payment_gmv AND settled_gmv >= 0",
            "returned_orders_at_most_orders": "returned_orders <= orders AND buyers <= orders",
            "cross_pool_within_subsidy": "cross_pool_subsidy <= platform_subsidy",
            "unattributed_within_spend": "unattributed_spend <= ad_spend",
            "refunds_not_negative": "refund_amount >= 0",
            "dt_in_restatement_window": _window_condition(cfg.restatement_window_days),
            "settlement_final_iff_window_closed": (
                f"settlement_final = (as_of >= date_add(dt, {cfg.settlement_window_days}))"
            ),
        },
        example_columns=list(KPI_TABLE_KEYS[table]),
    )


def kpi_daily_suites(cfg: OnetrackConfig = DEFAULTS) -> list[Suite]:
    ratios = [*between("return_rate", 0, 1), *between("settlement_rate", 0, 1), *between("roi", 0)]
    return [
        _contract_suite("kpi_daily", ratios),
        _kpi_rules("kpi_daily", cfg),
    ]


def kpi_merchant_daily_suites(cfg: OnetrackConfig = DEFAULTS) -> list[Suite]:
    ratios = [
        *not_null(["merchant_id"]),
        *between("return_rate", 0, 1),
        *between("settlement_rate", 0, 1),
        *between("roi", 0),
    ]
    return [
        _contract_suite("kpi_merchant_daily", ratios),
        _kpi_rules("kpi_merchant_daily", cfg),
    ]


def kpi_campaign_daily_suites(cfg: OnetrackConfig = DEFAULTS) -> list[Suite]:
    extra = [*not_null(["merchant_id"]), *between("return_rate", 0, 1), *between("roi", 0)]
    return [
        _contract_suite("kpi_campaign_daily", extra),
        equation_suite(
            "gold_kpi_campaign_daily_rules",
            "Counts nest (clicks <= impressions, returned <= attributed); rows only in the window.",
            {
                "clicks_at_most_impressions": "clicks <= impressions",
                "returned_at_most_attributed": "returned_orders <= attributed_orders",
                "dt_in_restatement_window": _window_condition(cfg.restatement_window_days),
            },
            example_columns=["dt", "campaign_id"],
        ),
        equation_suite(
            "gold_kpi_campaign_daily_allocation",
            "SPEC §5: a campaign-day with attributed orders has its whole spend allocated to them "
            "(finance/ad_fee_allocation agrees with silver ad_spend); without orders nothing is allocated.",
            {
                "spend_fully_allocated": (
                    "allocated_ad_fee = CASE WHEN attributed_orders > 0 THEN ad_spend ELSE 0 END"
                ),
            },
            example_columns=["dt", "campaign_id"],
            critical=False,
        ),
    ]


def return_attribution_daily_suites(cfg: OnetrackConfig = DEFAULTS) -> list[Suite]:
    extra = [
        *not_null(["attributed_pool", "reexposure"]),
        *in_set("attributed_pool", POOLS),
        *in_set("reexposure", REEXPOSURE_VALUES),
        *between("return_rate", 0, 1),
        *between("orders", 1),
    ]
    return [
        _contract_suite("return_attribution_daily", extra),
        equation_suite(
            "gold_return_attribution_daily_rules",
            "Returned orders nest in orders; found_cheaper_returns and refunds are not negative.",
            {
                "returned_at_most_orders": "returned_orders <= orders",
                "counts_not_negative": "found_cheaper_returns >= 0 AND refund_amount >= 0",
                "dt_in_restatement_window": _window_condition(cfg.restatement_window_days),
            },
            example_columns=["dt", "attributed_pool", "reexposure"],
        ),
    ]


def kpi_suites(cfg: OnetrackConfig = DEFAULTS) -> dict[str, list[Suite]]:
    return {
        "kpi_daily": kpi_daily_suites(cfg),
        "kpi_merchant_daily": kpi_merchant_daily_suites(cfg),
        "kpi_campaign_daily": kpi_campaign_daily_suites(cfg),
        "return_attribution_daily": return_attribution_daily_suites(cfg),
    }


# --- the four tables against each other ----------------------------------------------------------


def kpi_reconciliation(tables: dict[str, DataFrame]) -> DataFrame:
    """Per day of kpi_daily, its figures next to the sums of the merchant, campaign and
    return-attribution tables of the same snapshot (one row per day: small)."""
    daily = tables["kpi_daily"].select(
        "dt", "orders", "payment_gmv", "ad_spend", "refund_amount", "ad_fee_refund"
    )
    merchant = (
        tables["kpi_merchant_daily"]
        .groupBy("dt")
        .agg(
            F.sum("orders").alias("merchant_orders"),
            F.sum("payment_gmv").alias("merchant_payment_gmv"),
            F.sum("ad_spend").alias("merchant_ad_spend"),
            F.sum("ad_fee_refund").alias("merchant_ad_fee_refund"),
        )
    )
    campaign = tables["kpi_campaign_daily"].groupBy("dt").agg(F.sum("ad_spend").alias("campaign_ad_spend"))
    returns = (
        tables["return_attribution_daily"]
        .groupBy("dt")
        .agg(
            F.sum("orders").alias("reexposure_orders"),
            F.sum("refund_amount").alias("reexposure_refund_amount"),
        )
    )
    return (
        daily.join(merchant, on="dt", how="left")
        .join(campaign, on="dt", how="left")
        .join(returns, on="dt", how="left")
    )


def reconciliation_suites() -> list[Suite]:
    return [
        equation_suite(
            "gold_kpi_tables_reconcile",
            "Per day, the merchant, campaign and return-attribution tables add up to kpi_daily.",
            {
                "merchant_orders_add_up": "orders = coalesce(merchant_orders, 0)",
                "merchant_gmv_adds_up": "payment_gmv = coalesce(merchant_payment_gmv, 0)",
                "merchant_spend_adds_up": "ad_spend = coalesce(merchant_ad_spend, 0)",
                "merchant_ad_fee_refund_adds_up": "ad_fee_refund = coalesce(merchant_ad_fee_refund, 0)",
                "campaign_spend_adds_up": "ad_spend = coalesce(campaign_ad_spend, 0)",
                "reexposure_orders_add_up": "orders = coalesce(reexposure_orders, 0)",
                "reexposure_refunds_add_up": "refund_amount = coalesce(reexposure_refund_amount, 0)",
            },
            example_columns=["dt"],
        )
    ]
