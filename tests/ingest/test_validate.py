"""Each SPEC §2 rule on hand-built records: the rule id a broken record is quarantined with."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from pyspark.sql import functions as F

from assets.ingest.contracts import AD_SPEND, ORDERS, RETURNS, TRAFFIC
from assets.ingest.validate import split_records, validate_records
from tests.ingest.helpers import bronze_frame, order


def rules_of(spark, contract, records):
    df = validate_records(bronze_frame(spark, records), contract)
    return [r["rule"] for r in df.orderBy("line_number").collect()]


@pytest.mark.parametrize(
    "record, rule",
    [
        (order(), None),
        (order(order_id=None), "order_id:required"),
        ({k: v for k, v in order().items() if k != "user_id"}, "user_id:required"),
        (order(quantity=0), "quantity:range"),
        (order(quantity="two"), "quantity:type"),
        (order(quantity=-1), "quantity:range"),
        (order(unit_price="59.905"), "unit_price:type"),
        (order(unit_price="0.00"), "unit_price:range"),
        (order(unit_price="-1.00"), "unit_price:range"),
        (order(platform_subsidy="119.80", voucher_pool="ad"), "platform_subsidy:range"),  # 2 x 59.90
        (order(platform_subsidy="119.79", voucher_pool="ad"), None),
        (order(platform_subsidy="-0.01", voucher_pool="ad"), "platform_subsidy:range"),
        (order(platform_subsidy="5.00", voucher_pool=None), "voucher_pool:consistency"),
        (order(platform_subsidy="0.00", voucher_pool="organic"), "voucher_pool:consistency"),
        (order(voucher_pool="search", platform_subsidy="1.00"), "voucher_pool:enum"),
        (order(status="lost"), "status:enum"),
        (order(paid_at=None, status="cancelled"), None),
        (order(paid_at="2026-11-03 10:00:00"), "paid_at:type"),  # no offset
        (order(paid_at="2026-13-45T10:00:00+08:00"), "paid_at:type"),
        (order(updated_at="2026-11-03T02:00:00Z"), None),
        (order(updated_at=None), "updated_at:required"),
        (order(extra_field="x"), None),
        ("{not json", "json:malformed"),
        ("[1, 2]", "json:malformed"),
    ],
)
def test_order_rules(spark, record, rule):
    assert rules_of(spark, ORDERS, [record]) == [rule]


def test_typed_values_and_derived_amounts(spark):
    rec = order(quantity=3, unit_price="10.01", platform_subsidy="5.00", voucher_pool="ad",
                paid_at="2026-11-03T16:30:00Z")
    df = validate_records(bronze_frame(spark, [rec]), ORDERS)
    row = df.select("*", F.to_date("paid_at").alias("paid_date"),
                    F.date_format("paid_at", "yyyy-MM-dd'T'HH:mm:ssXXX").alias("paid_local")).first()
    assert row["quantity"] == 3
    assert row["unit_price"] == Decimal("10.01")
    assert row["order_amount"] == Decimal("30.03")  # 3 x 10.01
    assert row["pay_amount"] == Decimal("25.03")  # 30.03 - 5.00
    # 16:30 UTC is 00:30 the next day in Asia/Shanghai: the business day is 2026-11-04.
    assert row["paid_date"] == dt.date(2026, 11, 4)
    assert row["paid_local"] == "2026-11-04T00:30:00+08:00"
    assert row["extra_fields"] == []


def test_unknown_fields_are_reported_not_fatal(spark):
    row = validate_records(bronze_frame(spark, [order(coupon_code="X", channel="y")]), ORDERS).first()
    assert row["rule"] is None
    assert sorted(row["extra_fields"]) == ["channel", "coupon_code"]


def test_unknown_fields_found_beside_missing_and_null_fields(spark):
    """An unknown key is found whatever the known keys do: one missing (the map has as many keys
    as the contract has fields), one present with a null value, or none of them extra."""
    missing_user = {k: v for k, v in order(coupon_code="X").items() if k != "user_id"}
    null_pool = order(voucher_pool=None, platform_subsidy="0.00", channel="y")
    only_missing = {k: v for k, v in order().items() if k != "user_id"}
    assert len(missing_user) == len(ORDERS.fields)
    df = validate_records(bronze_frame(spark, [missing_user, null_pool, only_missing]), ORDERS)
    rows = df.orderBy("line_number").collect()
    assert [r["extra_fields"] for r in rows] == [["coupon_code"], ["channel"], []]
    assert [r["rule"] for r in rows] == ["user_id:required", None, "user_id:required"]


def test_all_violations_listed_first_is_rule(spark):
    record = order(order_id=None, quantity=0, status="x")
    row = validate_records(bronze_frame(spark, [record]), ORDERS).first()
    # quantity 0 makes the order amount 0, so the subsidy 0.00 is no longer below it either.
    assert row["violations"] == ["order_id:required", "quantity:range", "platform_subsidy:range", "status:enum"]
    assert row["rule"] == "order_id:required"


def ret(**overrides):
    base = {
        "return_id": "r1", "order_id": "o1", "return_type": "return_and_refund",
        "reason_code": "found_cheaper", "status": "refunded",
        "requested_at": "2026-11-04T10:00:00+08:00", "refunded_at": "2026-11-05T10:00:00+08:00",
        "refund_amount": "10.00", "updated_at": "2026-11-05T10:00:00+08:00",
    }
    base.update(overrides)
    return base


@pytest.mark.parametrize(
    "record, rule",
    [
        (ret(), None),
        (ret(status="requested"), "refunded_at:consistency"),
        (ret(status="requested", refunded_at=None), None),
        (ret(refunded_at=None), "refunded_at:consistency"),
        (ret(refund_amount="0"), "refund_amount:range"),
        (ret(refund_amount="-3.00"), "refund_amount:range"),
        (ret(reason_code="price"), "reason_code:enum"),
        (ret(return_type="exchange"), "return_type:enum"),
        (ret(requested_at="yesterday"), "requested_at:type"),
    ],
)
def test_return_rules(spark, record, rule):
    assert rules_of(spark, RETURNS, [record]) == [rule]


def spend(**overrides):
    base = {"stat_date": "2026-11-03", "stat_hour": "5", "advertiser_id": "m1", "campaign_id": "c1",
            "product_id": "p1", "impressions": "100", "clicks": "10", "spend": "12.50"}
    base.update(overrides)
    return base


@pytest.mark.parametrize(
    "record, rule",
    [
        (spend(), None),
        (spend(stat_hour="24"), "stat_hour:range"),
        (spend(clicks="101"), "clicks:range"),
        (spend(clicks="-1"), "clicks:range"),
        (spend(impressions="-5", clicks="0"), "impressions:range"),
        (spend(spend="-0.01"), "spend:range"),
        (spend(spend="1.234"), "spend:type"),
        (spend(stat_date="2026-11-31"), "stat_date:type"),
        (spend(campaign_id=""), "campaign_id:required"),
    ],
)
def test_ad_spend_rules(spark, record, rule):
    assert rules_of(spark, AD_SPEND, [record]) == [rule]


def event(**overrides):
    base = {"event_id": "e1", "event_time": "2026-11-03T01:00:00.000000+08:00", "user_id": "u1",
            "product_id": "p1", "spu_id": "s1", "merchant_id": "m1", "pool": "ad",
            "event_type": "click", "campaign_id": "c1", "placement": "feed", "shown_price": "59.90"}
    base.update(overrides)
    return base


@pytest.mark.parametrize(
    "record, rule",
    [
        (event(), None),
        (event(pool="organic", campaign_id=None), None),
        (event(pool="organic"), "campaign_id:consistency"),
        (event(campaign_id=None), "campaign_id:consistency"),
        (event(pool="paid"), "pool:enum"),
        (event(event_type="view"), "event_type:enum"),
        (event(placement="tv"), "placement:enum"),
        (event(shown_price="0.00"), "shown_price:range"),
    ],
)
def test_traffic_rules(spark, record, rule):
    assert rules_of(spark, TRAFFIC, [record]) == [rule]


def test_split_quarantine_duplicates_accepted(spark):
    records = [
        order(order_id="o1"),
        order(order_id="o1"),  # exact repeat in the same partition -> duplicate
        order(order_id="o1", status="shipped", updated_at="2026-11-04T09:00:00+08:00"),  # newer version
        order(order_id="o2"),  # seen in an earlier partition -> duplicate
        order(order_id="o3", quantity=0),  # quarantined
    ]
    validated = validate_records(bronze_frame(spark, records), ORDERS)
    earlier_hash = validate_records(bronze_frame(spark, [order(order_id="o2")]), ORDERS).select("record_hash")
    accepted, quarantined, duplicates = split_records(validated, earlier_hash, ORDERS)
    assert sorted((r.order_id, r.line_number) for r in accepted.collect()) == [("o1", 1), ("o1", 3)]
    assert sorted(r.line_number for r in duplicates.collect()) == [2, 4]
    assert [r.line_number for r in quarantined.collect()] == [5]
    assert accepted.count() + quarantined.count() + duplicates.count() == len(records)


def test_traffic_duplicate_is_a_repeated_event_id(spark):
    records = [
        event(event_id="e1"),
        event(event_id="e1", shown_price="10.00"),  # same event_id, other fields differ: duplicate
        event(event_id="e2"),  # seen in an earlier partition
        event(event_id="e3"),  # seen earlier and repeated here: both copies are duplicates
        event(event_id="e3"),
        event(event_id="e4"),
    ]
    validated = validate_records(bronze_frame(spark, records), TRAFFIC)
    earlier = spark.createDataFrame([("e2",), ("e3",), ("e9",)], "event_id string")
    accepted, _, duplicates = split_records(validated, earlier, TRAFFIC)
    assert [r.line_number for r in accepted.orderBy("line_number").collect()] == [1, 6]
    assert sorted(r.line_number for r in duplicates.collect()) == [2, 3, 4, 5]
    # event_id is traffic's duplicate key: no record hash is computed for it
    assert {r.record_hash for r in validated.collect()} == {None}
