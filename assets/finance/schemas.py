"""Schemas of the finance tables (docs/DESIGN.md) and of the silver inputs the finance path reads.

The silver schemas are the DESIGN.md contract; they are only used to make an empty frame when a
silver table has not been written yet, and by the tests to build small inputs.
"""

from __future__ import annotations

from pyspark.sql import types as T

MONEY = T.DecimalType(18, 2)

_TRAILING = [
    T.StructField("dt", T.DateType()),
    T.StructField("source_file", T.StringType()),
    T.StructField("line_number", T.LongType()),
    T.StructField("record_hash", T.StringType()),
]


def _struct(fields: list[tuple[str, T.DataType]], trailing: bool = False) -> T.StructType:
    return T.StructType(
        [T.StructField(name, dtype) for name, dtype in fields] + (_TRAILING if trailing else [])
    )


S, TS, D, INT, L = T.StringType(), T.TimestampType(), T.DateType(), T.IntegerType(), T.LongType()

SILVER_SCHEMAS: dict[str, T.StructType] = {
    "orders": _struct(
        [
            ("order_id", S),
            ("user_id", S),
            ("merchant_id", S),
            ("product_id", S),
            ("spu_id", S),
            ("quantity", INT),
            ("unit_price", MONEY),
            ("platform_subsidy", MONEY),
            ("voucher_pool", S),
            ("status", S),
            ("paid_at", TS),
            ("updated_at", TS),
            ("order_amount", MONEY),
            ("pay_amount", MONEY),
        ],
        trailing=True,
    ),
    "returns": _struct(
        [
            ("return_id", S),
            ("order_id", S),
            ("return_type", S),
            ("reason_code", S),
            ("status", S),
            ("requested_at", TS),
            ("refunded_at", TS),
            ("refund_amount", MONEY),
            ("updated_at", TS),
        ],
        trailing=True,
    ),
    "ad_spend": _struct(
        [
            ("stat_date", D),
            ("stat_hour", INT),
            ("advertiser_id", S),
            ("campaign_id", S),
            ("product_id", S),
            ("impressions", L),
            ("clicks", L),
            ("spend", MONEY),
        ],
        trailing=True,
    ),
    "traffic": _struct(
        [
            ("event_id", S),
            ("event_time", TS),
            ("user_id", S),
            ("product_id", S),
            ("spu_id", S),
            ("merchant_id", S),
            ("pool", S),
            ("event_type", S),
            ("campaign_id", S),
            ("placement", S),
            ("shown_price", MONEY),
        ],
        trailing=True,
    ),
}

ORDER_ATTRIBUTION_SCHEMA = _struct(
    [
        ("as_of", D),
        ("order_id", S),
        ("user_id", S),
        ("merchant_id", S),
        ("product_id", S),
        ("spu_id", S),
        ("quantity", INT),
        ("unit_price", MONEY),
        ("platform_subsidy", MONEY),
        ("voucher_pool", S),
        ("paid_at", TS),
        ("paid_date", D),
        ("order_amount", MONEY),
        ("pay_amount", MONEY),
        ("attributed_pool", S),
        ("campaign_id", S),
        ("touch_event_id", S),
        ("touch_time", TS),
    ]
)

AD_FEE_ALLOCATION_SCHEMA = _struct(
    [
        ("as_of", D),
        ("stat_date", D),
        ("campaign_id", S),
        ("advertiser_id", S),
        ("campaign_spend", MONEY),
        ("order_id", S),
        ("order_amount", MONEY),
        ("allocated_ad_fee", MONEY),
        ("unattributed_spend", MONEY),
    ]
)

# SPEC §6, in this order (also the column order of the settlement CSV, SPEC §7).
LEDGER_SCHEMA = _struct(
    [
        ("settlement_date", D),
        ("entry_type", S),
        ("merchant_id", S),
        ("campaign_id", S),
        ("order_id", S),
        ("return_id", S),
        ("paid_at", TS),
        ("refunded_at", TS),
        ("order_amount", MONEY),
        ("pay_amount", MONEY),
        ("refund_amount", MONEY),
        ("allocated_ad_fee", MONEY),
        ("ad_fee_refund", MONEY),
    ]
)
LEDGER_COLUMNS = tuple(LEDGER_SCHEMA.fieldNames())

# Which settlement dates the ledger step has computed (empty days included): "nothing to refund"
# is not "not run".
LEDGER_DAYS_SCHEMA = _struct([("settlement_date", D), ("entries", L), ("computed_at", TS)])

ENTRY_REFUND = "refund"
ENTRY_REVERSAL = "reversal"
POOLS = ("ad", "organic", "direct")
