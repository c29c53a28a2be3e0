"""Great Expectations suites guarding the finance assets (each suite = one Dagster asset check).

Critical suites are blocking: a failure stops the downstream assets of the run, so settlement
files are never published from a ledger that broke one of its rules.
"""

from __future__ import annotations

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from assets.finance.schemas import (
    AD_FEE_ALLOCATION_SCHEMA,
    ENTRY_REFUND,
    ENTRY_REVERSAL,
    LEDGER_SCHEMA,
    ORDER_ATTRIBUTION_SCHEMA,
    POOLS,
)
from quality.suites import (
    Suite,
    between,
    column_pair_equal,
    equation_suite,
    in_set,
    not_null,
    row_count_between,
    schema_expectations,
    unique_key,
)

# --- finance/order_attribution --------------------------------------------------------------------

ORDER_ATTRIBUTION_SUITES = [
    Suite(
        name="order_attribution_schema",
        description="Columns and types of finance/order_attribution (DESIGN.md).",
        expectations=lambda: schema_expectations(ORDER_ATTRIBUTION_SCHEMA),
    ),
    Suite(
        name="order_attribution_keys",
        description="One row per paid order per as_of; the pool is ad, organic or direct.",
        expectations=lambda: [
            *unique_key(["as_of", "order_id"]),
            *not_null(
                ["paid_at", "paid_date", "attributed_pool", "order_amount", "pay_amount", "merchant_id"]
            ),
            *in_set("attributed_pool", POOLS),
        ],
        example_columns=("as_of", "order_id"),
    ),
    equation_suite(
        "order_attribution_touch",
        "SPEC §4: a campaign only for pool ad, a touch for every non-direct order, never after payment.",
        {
            "campaign_iff_ad": "(attributed_pool = 'ad') = (campaign_id IS NOT NULL)",
            "touch_iff_not_direct": "(attributed_pool = 'direct') = (touch_event_id IS NULL)",
            "touch_not_after_payment": "touch_time IS NULL OR touch_time <= paid_at",
            "paid_date_is_business_day_of_paid_at": "paid_date = to_date(paid_at)",
        },
        example_columns=["as_of", "order_id"],
    ),
]

# --- finance/ad_fee_allocation --------------------------------------------------------------------


def per_campaign_day(allocation: DataFrame) -> DataFrame:
    """One row per (as_of, campaign-day): its spend and what was allocated or left unattributed."""
    return allocation.groupBy("as_of", "stat_date", "campaign_id").agg(
        F.max("campaign_spend").alias("campaign_spend"),
        F.min("campaign_spend").alias("campaign_spend_min"),
        (F.sum(F.coalesce(F.col("allocated_ad_fee"), F.lit(0))) + F.sum(F.col("unattributed_spend")))
        .cast("decimal(18,2)")
        .alias("allocated_or_unattributed"),
    )


AD_FEE_ALLOCATION_SUITES = [
    Suite(
        name="ad_fee_allocation_schema",
        description="Columns and types of finance/ad_fee_allocation (DESIGN.md).",
        expectations=lambda: schema_expectations(AD_FEE_ALLOCATION_SCHEMA),
    ),
    Suite(
        name="ad_fee_allocation_keys",
        description="One row per (as_of, campaign-day, order); fees and spends never negative.",
        expectations=lambda: [
            *not_null(["as_of", "stat_date", "campaign_id", "campaign_spend", "unattributed_spend"]),
            *unique_key(["as_of", "stat_date", "campaign_id", "order_id"], include_not_null=False),
            *between("allocated_ad_fee", 0),
            *between("unattributed_spend", 0),
            *between("campaign_spend", 0),
        ],
        example_columns=("stat_date", "campaign_id", "order_id"),
    ),
    Suite(
        name="ad_fee_allocation_sums_to_spend",
        description=(
            "SPEC §5: the fees of a campaign-day add up to its spend exactly (or the spend is "
            "reported unattributed)."
        ),
        expectations=lambda: [
            *not_null(["campaign_spend", "allocated_or_unattributed"]),
            *column_pair_equal("campaign_spend", "allocated_or_unattributed"),
            *column_pair_equal("campaign_spend", "campaign_spend_min"),
        ],
        prepare=per_campaign_day,
        example_columns=("as_of", "stat_date", "campaign_id"),
    ),
]

# --- finance/ad_fee_refund_ledger (on the ledger through D: assets.finance.steps.ledger_check_frame) -


def per_order(ledger: DataFrame) -> DataFrame:
    """Per order: the net ad-fee refund in the ledger and the largest fee it was settled with."""
    return ledger.groupBy("order_id").agg(
        F.sum("ad_fee_refund").alias("net_ad_fee_refund"),
        F.max("allocated_ad_fee").alias("allocated_ad_fee"),
    )


AD_FEE_REFUND_LEDGER_SUITES = [
    Suite(
        name="ad_fee_refund_ledger_schema",
        description="SPEC §6 columns, in order, with their types.",
        expectations=lambda: schema_expectations(LEDGER_SCHEMA),
    ),
    Suite(
        name="ad_fee_refund_ledger_keys",
        description="Each return is settled at most once and reversed at most once.",
        expectations=lambda: [
            *unique_key(["return_id", "entry_type"]),
            *in_set("entry_type", [ENTRY_REFUND, ENTRY_REVERSAL]),
            *not_null(
                ["settlement_date", "merchant_id", "campaign_id", "order_id", "paid_at", "refunded_at"]
                + ["order_amount", "pay_amount", "refund_amount", "allocated_ad_fee", "ad_fee_refund"]
            ),
        ],
        example_columns=("settlement_date", "return_id", "entry_type"),
    ),
    equation_suite(
        "ad_fee_refund_ledger_amounts",
        "No negative ad_fee_refund except reversals, reversals never positive, "
        "no entry above its order's fee.",
        {
            "refund_not_negative": f"entry_type <> '{ENTRY_REFUND}' OR ad_fee_refund >= 0",
            "reversal_not_positive": f"entry_type <> '{ENTRY_REVERSAL}' OR ad_fee_refund <= 0",
            "entry_within_fee": "abs(ad_fee_refund) <= allocated_ad_fee",
        },
        example_columns=["settlement_date", "return_id", "entry_type"],
    ),
    equation_suite(
        "ad_fee_refund_ledger_order_cap",
        "SPEC §6: an order's refunds (net of reversals) never exceed its allocated fee.",
        {"net_refund_within_fee": "net_ad_fee_refund >= 0 AND net_ad_fee_refund <= allocated_ad_fee"},
        base=per_order,
        example_columns=["order_id"],
    ),
]

# Run on :func:`assets.finance.ledger.returns_out_of_scope` (not on the ledger itself).
LEDGER_SCOPE_SUITES = [
    Suite(
        name="ad_fee_refund_ledger_returns_in_scope",
        description=(
            "Refunded returns landed on D that may be eligible but whose order was paid before the "
            "ledger's lookback window (ONETRACK_LEDGER_LOOKBACK_DAYS) cannot be settled: expected "
            "none (each such return is reported on the day it lands)."
        ),
        expectations=lambda: row_count_between(max_value=0),
        critical=False,
    ),
]
