"""Hand-built rows in the internal table schemas of docs/DESIGN.md (silver, finance, gold).

Each builder takes only what a test cares about and fills the rest with defaults, so a test reads
like the scenario it describes. Timestamps are written with their offset (business time +08:00).
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

SHANGHAI = dt.timezone(dt.timedelta(hours=8))

ORDER_ATTRIBUTION_SCHEMA = (
    "as_of DATE, order_id STRING, user_id STRING, merchant_id STRING, product_id STRING, spu_id STRING, "
    "quantity INT, unit_price DECIMAL(18,2), platform_subsidy DECIMAL(18,2), voucher_pool STRING, "
    "paid_at TIMESTAMP, paid_date DATE, order_amount DECIMAL(18,2), "
    "pay_amount DECIMAL(18,2), attributed_pool STRING, campaign_id STRING, touch_event_id STRING, "
    "touch_time TIMESTAMP"
)
RETURNS_SCHEMA = (
    "return_id STRING, order_id STRING, return_type STRING, reason_code STRING, status STRING, "
    "requested_at TIMESTAMP, refunded_at TIMESTAMP, refund_amount DECIMAL(18,2), updated_at TIMESTAMP, "
    "dt DATE, source_file STRING, line_number LONG, record_hash STRING"
)
AD_SPEND_SCHEMA = (
    "stat_date DATE, stat_hour INT, advertiser_id STRING, campaign_id STRING, product_id STRING, "
    "impressions LONG, clicks LONG, spend DECIMAL(18,2), dt DATE, source_file STRING, line_number LONG, "
    "record_hash STRING"
)
TRAFFIC_SCHEMA = (
    "event_id STRING, event_time TIMESTAMP, user_id STRING, product_id STRING, spu_id STRING, "
    "merchant_id STRING, pool STRING, event_type STRING, campaign_id STRING, placement STRING, "
    "shown_price DECIMAL(18,2), dt DATE, source_file STRING, line_number LONG, record_hash STRING"
)
AD_FEE_ALLOCATION_SCHEMA = (
    "as_of DATE, stat_date DATE, campaign_id STRING, advertiser_id STRING, campaign_spend DECIMAL(18,2), "
    "order_id STRING, order_amount DECIMAL(18,2), allocated_ad_fee DECIMAL(18,2), "
    "unattributed_spend DECIMAL(18,2)"
)
LEDGER_SCHEMA = (
    "settlement_date DATE, entry_type STRING, merchant_id STRING, campaign_id STRING, order_id STRING, "
    "return_id STRING, paid_at TIMESTAMP, refunded_at TIMESTAMP, order_amount DECIMAL(18,2), "
    "pay_amount DECIMAL(18,2), refund_amount DECIMAL(18,2), allocated_ad_fee DECIMAL(18,2), "
    "ad_fee_refund DECIMAL(18,2)"
)
ORDER_REEXPOSURE_SCHEMA = (
    "order_id STRING, paid_date DATE, paid_at TIMESTAMP, user_id STRING, spu_id STRING, "
    "unit_price DECIMAL(18,2), first_requested_at TIMESTAMP, ad_exposures LONG, organic_exposures LONG, "
    "reexposure STRING, as_of DATE"
)


def day(text: str) -> dt.date:
    return dt.date.fromisoformat(text)


def ts(text: str) -> dt.datetime:
    """``"2026-12-01 10:00"`` in business time (+08:00), as an aware datetime."""
    return dt.datetime.fromisoformat(text).replace(tzinfo=SHANGHAI)


def money(value) -> Decimal | None:
    return None if value is None else Decimal(str(value)).quantize(Decimal("0.01"))


def _frame(spark, schema: str, rows: list[tuple]):
    return spark.createDataFrame(rows, schema)


def order_attribution(spark, orders: list[dict]):
    """keys: order_id, paid_at (str), amount (unit price), as_of; optional: quantity, user, merchant,
    product, spu, subsidy, voucher_pool, pool (ad|organic|direct), campaign, paid_date."""
    rows = []
    for o in orders:
        quantity = o.get("quantity", 1)
        unit_price = money(o["amount"])
        order_amount = unit_price * quantity
        subsidy = money(o.get("subsidy", 0))
        paid_at = ts(o["paid_at"])
        rows.append(
            (
                day(o["as_of"]),
                o["order_id"],
                o.get("user", "u1"),
                o.get("merchant", "m1"),
                o.get("product", "p1"),
                o.get("spu", "s1"),
                quantity,
                unit_price,
                subsidy,
                o.get("voucher_pool"),
                paid_at,
                day(o["paid_date"]) if "paid_date" in o else paid_at.date(),
                order_amount,
                order_amount - subsidy,
                o.get("pool", "direct"),
                o.get("campaign"),
                None,
                None,
            )
        )
    return _frame(spark, ORDER_ATTRIBUTION_SCHEMA, rows)


def returns(spark, items: list[dict]):
    """keys: return_id, order_id, status, requested_at, dt; optional: refunded_at, refund, type,
    reason, updated_at (defaults to refunded_at or requested_at), line."""
    rows = []
    for i, r in enumerate(items):
        refunded_at = ts(r["refunded_at"]) if r.get("refunded_at") else None
        updated_at = ts(r["updated_at"]) if r.get("updated_at") else (refunded_at or ts(r["requested_at"]))
        rows.append(
            (
                r["return_id"],
                r["order_id"],
                r.get("type", "return_and_refund"),
                r.get("reason", "other"),
                r["status"],
                ts(r["requested_at"]),
                refunded_at,
                money(r.get("refund", "1.00")),
                updated_at,
                day(r["dt"]),
                f"returns/dt={r['dt']}/part-0001.jsonl",
                r.get("line", i + 1),
                None,
            )
        )
    return _frame(spark, RETURNS_SCHEMA, rows)


def ad_spend(spark, items: list[dict]):
    """keys: stat_date, hour, advertiser, campaign, spend, dt; optional: impressions, clicks, file, line."""
    rows = []
    for i, s in enumerate(items):
        rows.append(
            (
                day(s["stat_date"]),
                s.get("hour", 0),
                s["advertiser"],
                s["campaign"],
                s.get("product", "p1"),
                s.get("impressions", 0),
                s.get("clicks", 0),
                money(s["spend"]),
                day(s["dt"]),
                s.get("file", f"ad_spend/dt={s['dt']}/part-0001.csv"),
                s.get("line", i + 1),
                None,
            )
        )
    return _frame(spark, AD_SPEND_SCHEMA, rows)


def traffic(spark, events: list[dict]):
    """keys: event_id, event_time, pool, price; optional: user, spu, product, type, dt."""
    rows = []
    for i, e in enumerate(events):
        event_time = ts(e["event_time"])
        rows.append(
            (
                e["event_id"],
                event_time,
                e.get("user", "u1"),
                e.get("product", "p1"),
                e.get("spu", "s1"),
                e.get("merchant", "m1"),
                e["pool"],
                e.get("type", "impression"),
                "c1" if e["pool"] == "ad" else None,
                "feed",
                money(e["price"]),
                day(e.get("dt", event_time.date().isoformat())),
                "traffic/part-0001.parquet",
                i,
                None,
            )
        )
    return _frame(spark, TRAFFIC_SCHEMA, rows)


def ad_fee_allocation(spark, items: list[dict]):
    """keys: as_of, stat_date, campaign, advertiser, spend; order rows: order_id, order_amount, fee;
    an unattributed campaign-day row has no order_id."""
    rows = []
    for a in items:
        order_id = a.get("order_id")
        rows.append(
            (
                day(a["as_of"]),
                day(a["stat_date"]),
                a["campaign"],
                a["advertiser"],
                money(a["spend"]),
                order_id,
                money(a.get("order_amount")),
                money(a["fee"]) if order_id else None,
                money(0) if order_id else money(a["spend"]),
            )
        )
    return _frame(spark, AD_FEE_ALLOCATION_SCHEMA, rows)


def ledger(spark, items: list[dict]):
    """keys: settlement_date, order_id, return_id, paid_at, merchant, campaign, ad_fee_refund;
    optional: entry_type (refund), refunded_at, order_amount, pay_amount, refund, fee."""
    rows = []
    for e in items:
        rows.append(
            (
                day(e["settlement_date"]),
                e.get("entry_type", "refund"),
                e["merchant"],
                e["campaign"],
                e["order_id"],
                e["return_id"],
                ts(e["paid_at"]),
                ts(e.get("refunded_at", e["paid_at"])),
                money(e.get("order_amount", "1.00")),
                money(e.get("pay_amount", "1.00")),
                money(e.get("refund", "1.00")),
                money(e.get("fee", "1.00")),
                money(e["ad_fee_refund"]),
            )
        )
    return _frame(spark, LEDGER_SCHEMA, rows)


def order_reexposure(spark, as_of: str, classes: dict[str, str], paid: dict[str, str] | None = None):
    """order_id -> reexposure class, for feeding the KPI functions directly; ``paid``: order_id ->
    paid date (default ``as_of``: in every restatement window of ``as_of``)."""
    paid = paid or {}
    rows = [
        (order_id, day(paid.get(order_id, as_of)), None, None, None, None, None, 0, 0, cls, day(as_of))
        for order_id, cls in classes.items()
    ]
    return _frame(spark, ORDER_REEXPOSURE_SCHEMA, rows)


def gold_rows(spark, table: str, rows: list[dict]):
    """Rows of a gold table: unspecified counts 0, money 0.00, ratios null, settlement_final false."""
    from assets.kpi.metrics import table_schema

    schema = table_schema(table)
    filled = []
    for row in rows:
        values = []
        for field in schema.fields:
            if field.name in row:
                value = row[field.name]
            else:
                kind = field.dataType.simpleString()
                value = {"bigint": 0, "decimal(18,2)": Decimal("0.00"), "boolean": False}.get(kind)
            values.append(value)
        filled.append(tuple(values))
    return spark.createDataFrame(filled, schema)


def by_key(rows, *key: str) -> dict:
    """Collected rows as {key tuple (or single value): row dict}."""
    out = {}
    for row in rows:
        d = row.asDict()
        k = tuple(d[c] for c in key)
        out[k[0] if len(k) == 1 else k] = d
    return out
