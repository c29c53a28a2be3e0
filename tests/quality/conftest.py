"""Small hand-built frames for the quality tests (a few rows each: the box is shared)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from pyspark.sql import types as T

SHANGHAI = dt.timezone(dt.timedelta(hours=8))

ORDERS_DDL = (
    "order_id STRING, merchant_id STRING, line_no INT, status STRING, quantity INT, "
    "unit_price DECIMAL(18,2), order_amount DECIMAL(18,2), pay_amount DECIMAL(18,2), "
    "paid_at TIMESTAMP, paid_date DATE, line_number LONG"
)
ORDERS_SCHEMA = T.StructType(
    [
        T.StructField("order_id", T.StringType()),
        T.StructField("merchant_id", T.StringType()),
        T.StructField("line_no", T.IntegerType()),
        T.StructField("status", T.StringType()),
        T.StructField("quantity", T.IntegerType()),
        T.StructField("unit_price", T.DecimalType(18, 2)),
        T.StructField("order_amount", T.DecimalType(18, 2)),
        T.StructField("pay_amount", T.DecimalType(18, 2)),
        T.StructField("paid_at", T.TimestampType()),
        T.StructField("paid_date", T.DateType()),
        T.StructField("line_number", T.LongType()),
    ]
)


def ts(text: str) -> dt.datetime:
    """``"2026-11-01 10:00"`` in business time (+08:00), as an aware datetime."""
    return dt.datetime.fromisoformat(text).replace(tzinfo=SHANGHAI)


def order(
    order_id: str,
    *,
    merchant_id: str = "m1",
    line_no: int = 1,
    status: str = "paid",
    quantity: int = 1,
    unit_price: str = "10.00",
    order_amount: str | None = None,
    pay_amount: str | None = None,
    paid_at: str = "2026-11-01 10:00",
    paid_date: str = "2026-11-01",
    line_number: int = 1,
) -> tuple:
    amount = Decimal(order_amount) if order_amount is not None else quantity * Decimal(unit_price)
    return (
        order_id,
        merchant_id,
        line_no,
        status,
        quantity,
        Decimal(unit_price),
        amount,
        Decimal(pay_amount) if pay_amount is not None else amount,
        ts(paid_at) if paid_at is not None else None,
        dt.date.fromisoformat(paid_date) if paid_date is not None else None,
        line_number,
    )


@pytest.fixture(scope="module")
def good_orders(spark):
    rows = [
        order("o1", quantity=2, unit_price="59.90"),  # 2 x 59.90 = 119.80
        # lowest price, first instant of the day
        order("o2", unit_price="0.01", paid_at="2026-11-01 00:00", line_number=3),
        order(
            "o3",
            status="shipped",
            unit_price="99.99",
            paid_at="2026-11-30 23:59:59",
            paid_date="2026-11-30",
            line_number=4,
        ),
        order(
            "o3",
            line_no=2,
            status="shipped",
            unit_price="99.99",
            paid_at="2026-11-30 23:59:59",
            paid_date="2026-11-30",
            line_number=2,
        ),
    ]
    df = spark.createDataFrame(rows, ORDERS_DDL).cache()
    yield df
    df.unpersist()
