"""Small silver-shaped DataFrames (docs/DESIGN.md schemas) built from a few dicts.

Timestamps are ISO strings with an offset; dates ISO strings; amounts strings. Missing fields get
plausible defaults, and the derived/trailing columns (order_amount, pay_amount, dt, source_file,
line_number, record_hash) are filled in.
"""

from __future__ import annotations

import datetime as dt
import itertools
from decimal import Decimal

from assets.finance.schemas import SILVER_SCHEMAS

_line = itertools.count(1)


def ts(value: str | None) -> dt.datetime | None:
    return None if value is None else dt.datetime.fromisoformat(value)


def day(value: str | None) -> dt.date | None:
    return None if value is None else dt.date.fromisoformat(value)


def money(value) -> Decimal | None:
    return None if value is None else Decimal(str(value)).quantize(Decimal("0.01"))


_TS = {"paid_at", "updated_at", "requested_at", "refunded_at", "event_time"}
_DATES = {"dt", "stat_date"}
_MONEY = {
    "unit_price",
    "platform_subsidy",
    "order_amount",
    "pay_amount",
    "refund_amount",
    "spend",
    "shown_price",
}

DEFAULTS = {
    "orders": {
        "user_id": "u1",
        "merchant_id": "m1",
        "product_id": "p1",
        "spu_id": "s1",
        "quantity": 1,
        "unit_price": "100.00",
        "platform_subsidy": "0.00",
        "voucher_pool": None,
        "status": "paid",
        "paid_at": "2026-11-02T12:00:00+08:00",
        "updated_at": None,
        "dt": "2026-11-02",
    },
    "returns": {
        "return_type": "return_and_refund",
        "reason_code": "found_cheaper",
        "status": "refunded",
        "requested_at": "2026-11-03T10:00:00+08:00",
        "refunded_at": "2026-11-03T12:00:00+08:00",
        "refund_amount": "100.00",
        "updated_at": None,
        "dt": "2026-11-03",
    },
    "ad_spend": {
        "stat_hour": 10,
        "advertiser_id": "m1",
        "product_id": "p1",
        "impressions": 100,
        "clicks": 10,
        "spend": "0.00",
    },
    "traffic": {
        "user_id": "u1",
        "product_id": "p1",
        "spu_id": "s1",
        "merchant_id": "m1",
        "pool": "ad",
        "event_type": "click",
        "campaign_id": None,
        "placement": "feed",
        "shown_price": "100.00",
        "dt": "2026-11-02",
    },
}


def _row(source: str, given: dict) -> dict:
    row = {**DEFAULTS[source], **given}
    if source == "orders":
        if row["updated_at"] is None:
            row["updated_at"] = row["paid_at"] or "2026-11-01T00:00:00+08:00"
        amount = money(row["unit_price"]) * int(row["quantity"])
        row.setdefault("order_amount", amount)
        row.setdefault("pay_amount", amount - money(row["platform_subsidy"]))
    if source == "returns" and row["updated_at"] is None:
        row["updated_at"] = row["refunded_at"] or row["requested_at"]
    if source == "ad_spend":
        row.setdefault("dt", row["stat_date"])
    if source == "traffic" and row["pool"] == "ad" and row["campaign_id"] is None:
        row["campaign_id"] = "c1"
    row.setdefault("source_file", f"{source}/dt={row['dt']}/part-0001")
    row.setdefault("line_number", next(_line))
    row.setdefault("record_hash", f"h{row['line_number']}")
    out = {}
    for key, value in row.items():
        if key in _TS:
            value = ts(value)
        elif key in _DATES:
            value = day(value)
        elif key in _MONEY:
            value = money(value)
        out[key] = value
    return out


def silver_df(spark, source: str, rows: list[dict]):
    schema = SILVER_SCHEMAS[source]
    data = [tuple(_row(source, r).get(f.name) for f in schema.fields) for r in rows]
    df = spark.createDataFrame(data, schema)
    # Cached and counted so that Spark knows the frame is small (as it knows for a Delta table)
    # and plans broadcast joins; a plain local frame is assumed huge.
    df.cache().count()
    return df


def orders_df(spark, rows):
    return silver_df(spark, "orders", rows)


def returns_df(spark, rows):
    return silver_df(spark, "returns", rows)


def ad_spend_df(spark, rows):
    return silver_df(spark, "ad_spend", rows)


def traffic_df(spark, rows):
    return silver_df(spark, "traffic", rows)
