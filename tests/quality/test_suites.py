"""Each builder passes on good rows and fails on bad ones, on a real Spark DataFrame."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from quality.runner import validate
from quality.suites import (
    Suite,
    add_flags,
    always_true,
    between,
    column_pair_equal,
    equation_suite,
    in_set,
    not_null,
    schema_expectations,
    spark_type_name,
    unique_key,
)
from tests.quality.conftest import ORDERS_DDL, ORDERS_SCHEMA, SHANGHAI, order

ORDER_STATUSES = ["paid", "shipped", "delivered", "completed", "cancelled"]


def value_expectations() -> list:
    return [
        *not_null("status"),
        *in_set("status", ORDER_STATUSES),
        *between("quantity", 1),
        *between("unit_price", 0, Decimal("99.99"), strict_min=True),  # 0 < unit_price <= 99.99
        # [2026-11-01 00:00 +08:00, 2026-12-01 00:00 +08:00): a string bound and an aware datetime
        *between(
            "paid_at",
            "2026-11-01T00:00:00+08:00",
            dt.datetime(2026, 12, 1, tzinfo=SHANGHAI),
            strict_max=True,
        ),
        *between("paid_date", dt.date(2026, 11, 1), dt.date(2026, 11, 30)),
        *unique_key(["order_id", "line_no"]),  # not_null(order_id), not_null(line_no), compound unique
        *unique_key("line_number"),  # not_null(line_number), unique
        *column_pair_equal("order_amount", "pay_amount"),
    ]


VALUES = Suite(name="orders_values", description="value rules", expectations=value_expectations)


def failures_by_rule(outcome) -> dict[tuple, int]:
    """``{(expectation_type, column): unexpected_count}`` of the failed expectations."""
    out = {}
    for failure in outcome.failed:
        kwargs = failure["kwargs"]
        column = kwargs.get("column") or tuple(kwargs.get("column_list", ())) or kwargs.get("column_A")
        out[(failure["expectation_type"].removeprefix("expect_"), column)] = failure["unexpected_count"]
    return out


def test_value_builders_pass_on_good_rows(good_orders):
    outcome = validate(good_orders, VALUES)

    assert outcome.failed == []
    assert outcome.success
    assert outcome.evaluated == 12
    assert outcome.row_count == 4


def test_value_builders_fail_on_bad_rows(spark, good_orders):
    bad_rows = [
        order("o10", line_number=10, status="refunded"),  # status not in set
        order(None, line_number=11),  # order_id null
        order("o12", line_number=12, status=None),  # status null (in_set skips it)
        order("o13", line_number=13, quantity=0, order_amount="0.00"),  # quantity < 1
        order("o14", line_number=14, unit_price="0.00"),  # unit_price not > 0
        order("o15", line_number=15, unit_price="100.00"),  # unit_price > 99.99
        order("o16", line_number=16, paid_at="2026-10-31 23:59:59"),  # one second before the window
        order("o17", line_number=17, paid_at="2026-12-01 00:00"),  # on the strict upper bound
        order("o18", line_number=18, paid_date="2026-12-01"),  # after 2026-11-30
        order("o1", line_number=19),  # (o1, 1) again: both rows are duplicates
        order("o20", line_number=1),  # line_number 1 again (o1 has it)
        order("o21", line_number=21, pay_amount="5.00"),  # pay_amount != order_amount
    ]
    bad = good_orders.unionByName(spark.createDataFrame(bad_rows, ORDERS_DDL)).cache()

    outcome = validate(bad, VALUES)

    assert not outcome.success
    assert outcome.row_count == 16
    assert failures_by_rule(outcome) == {
        ("column_values_to_not_be_null", "status"): 1,
        ("column_values_to_be_in_set", "status"): 1,
        ("column_values_to_be_between", "quantity"): 1,
        ("column_values_to_be_between", "unit_price"): 2,
        ("column_values_to_be_between", "paid_at"): 2,
        ("column_values_to_be_between", "paid_date"): 1,
        ("column_values_to_not_be_null", "order_id"): 1,
        ("compound_columns_to_be_unique", ("order_id", "line_no")): 2,
        ("column_values_to_be_unique", "line_number"): 2,
        ("column_pair_values_to_be_equal", "order_amount"): 1,
    }
    by_column = {f["kwargs"].get("column"): f for f in outcome.failed if "column" in f["kwargs"]}
    # Decimals come back as strings, exactly as stored.
    assert sorted(by_column["unit_price"]["partial_unexpected_list"]) == ["0.00", "100.00"]
    # Timestamps come back as instants in business time, whatever the machine's time zone.
    assert sorted(by_column["paid_at"]["partial_unexpected_list"]) == [
        "2026-10-31T23:59:59+08:00",
        "2026-12-01T00:00:00+08:00",
    ]
    # in_set counts against the non-null values: 1 of 15.
    in_set_failure = next(
        f for f in outcome.failed if f["expectation_type"] == "expect_column_values_to_be_in_set"
    )
    assert in_set_failure["partial_unexpected_list"] == ["refunded"]
    assert in_set_failure["unexpected_percent"] == pytest.approx(100 / 15)
    compound = next(
        f for f in outcome.failed if f["expectation_type"] == "expect_compound_columns_to_be_unique"
    )
    assert compound["partial_unexpected_list"] == [{"order_id": "o1", "line_no": 1}] * 2
    bad.unpersist()


def test_value_checks_skip_nulls_but_compound_keys_compare_them(spark):
    """GE quirks: nulls are 'missing', not 'unexpected', except inside a compound key."""
    rows = [("a", None, None, None), ("a", None, 1, None), (None, None, 1, 1), (None, None, None, None)]
    df = spark.createDataFrame(rows, "k1 STRING, k2 STRING, a INT, b INT")
    suite = Suite(
        name="nulls",
        description="null handling",
        expectations=lambda: [
            *in_set("a", [1]),
            *between("a", 1, 1),
            *unique_key("k2", include_not_null=False),  # all null: no duplicates
            *unique_key(["k1", "k2"], include_not_null=False),  # (a, null) twice: duplicates
            *column_pair_equal("a", "b"),  # (1, null): unequal; (null, null): skipped
        ],
    )

    outcome = validate(df, suite)

    assert failures_by_rule(outcome) == {
        ("compound_columns_to_be_unique", ("k1", "k2")): 2,
        ("column_pair_values_to_be_equal", "a"): 1,
    }


def test_between_refuses_naive_datetimes():
    with pytest.raises(ValueError, match="naive datetime"):
        between("paid_at", dt.datetime(2026, 11, 1))
    with pytest.raises(ValueError):
        between("paid_at")


# ---------------------------------------------------------------------------------------------
# Schema
# ---------------------------------------------------------------------------------------------


def test_type_names_ge_accepts_on_spark(spark):
    """ExpectColumnValuesToBeOfType on Spark wants pyspark.sql.types class names."""
    ddl = (
        "s STRING, i INT, l BIGINT, sh SMALLINT, d DECIMAL(18,2), f DOUBLE, b BOOLEAN, day DATE, "
        "t TIMESTAMP, ntz TIMESTAMP_NTZ, arr ARRAY<STRING>, bin BINARY"
    )
    df = spark.createDataFrame([], ddl)
    import great_expectations.expectations as gxe

    class_names = Suite(
        name="class_names",
        description="",
        expectations=lambda: [
            gxe.ExpectColumnValuesToBeOfType(column=f.name, type_=spark_type_name(f.dataType))
            for f in df.schema.fields
        ],
    )
    sql_names = Suite(
        name="sql_names",
        description="",
        expectations=lambda: [
            gxe.ExpectColumnValuesToBeOfType(column=f.name, type_=f.dataType.simpleString())
            for f in df.schema.fields
        ],
    )

    assert [spark_type_name(f.dataType) for f in df.schema.fields] == [
        "StringType",
        "IntegerType",
        "LongType",
        "ShortType",
        "DecimalType",
        "DoubleType",
        "BooleanType",
        "DateType",
        "TimestampType",
        "TimestampNTZType",
        "ArrayType",
        "BinaryType",
    ]
    assert validate(df, class_names).success
    rejected = validate(df, sql_names)
    assert len(rejected.failed) == len(df.schema.fields)
    assert all("No recognized spark types" in f["exception"] for f in rejected.failed)


def test_schema_expectations_pass_on_the_schema(spark):
    df = spark.createDataFrame([], ORDERS_SCHEMA)
    suite = Suite(
        name="orders_schema", description="", expectations=lambda: schema_expectations(ORDERS_SCHEMA)
    )

    outcome = validate(df, suite)

    assert outcome.failed == []
    # 1 column set + 11 x (exists, class) + 3 decimals x exact type
    assert outcome.evaluated == 1 + 2 * 11 + 3
    assert outcome.row_count == 0


def test_schema_expectations_catch_drift(spark):
    drifted = spark.createDataFrame(
        [],
        "order_id STRING, merchant_id STRING, line_no INT, quantity BIGINT, unit_price DECIMAL(38,6), "
        "order_amount DECIMAL(18,2), pay_amount DECIMAL(18,2), paid_at STRING, paid_date DATE, "
        "line_number LONG, junk STRING",  # status missing, junk extra
    )
    suite = Suite(
        name="orders_schema", description="", expectations=lambda: schema_expectations(ORDERS_SCHEMA)
    )

    outcome = validate(drifted, suite)
    failed = {(f["expectation_type"], f["kwargs"].get("column")): f for f in outcome.failed}

    assert set(failed) == {
        ("expect_table_columns_to_match_set", None),
        ("expect_column_to_exist", "status"),
        ("expect_column_values_to_be_of_type", "status"),  # cannot be evaluated: column missing
        ("expect_column_values_to_be_of_type", "quantity"),
        ("expect_column_values_to_be_of_type", "paid_at"),
        # DecimalType(38,6) is a DecimalType: only the exact type check sees it
        ("expect_column_values_to_have_spark_type", "unit_price"),
    }
    assert failed[("expect_column_values_to_be_of_type", "quantity")]["observed_value"] == "LongType"
    assert (
        failed[("expect_column_values_to_have_spark_type", "unit_price")]["observed_value"] == "decimal(38,6)"
    )
    assert failed[("expect_column_values_to_be_of_type", "status")]["exception"]


# ---------------------------------------------------------------------------------------------
# Equations
# ---------------------------------------------------------------------------------------------

AMOUNTS = equation_suite(
    "orders_amounts",
    "derived amounts",
    {
        "order_amount_is_qty_x_price": "order_amount = quantity * unit_price",
        "pay_amount_at_most_order_amount": lambda df: df["pay_amount"] <= df["order_amount"],
    },
    example_columns=["order_id", "line_no"],
)


def test_equation_suite_passes_when_equations_hold(good_orders):
    outcome = validate(good_orders, AMOUNTS)

    assert outcome.success, outcome.failed
    assert outcome.evaluated == 2


def test_equation_suite_fails_with_the_offending_rows(spark, good_orders):
    bad_rows = [
        order("o30", quantity=3, unit_price="10.00", order_amount="20.00"),  # 3 x 10.00 != 20.00
        order("o31", order_amount="10.00", pay_amount="10.01"),  # pays more than the order
    ]
    unknown = ("o32", "m1", 1, "paid", 1, Decimal("10.00"), None, None, None, None, 32)  # amounts null
    bad = good_orders.unionByName(spark.createDataFrame([*bad_rows, unknown], ORDERS_DDL))

    outcome = validate(bad, AMOUNTS)
    failed = {f["kwargs"]["column"]: f for f in outcome.failed}

    # o32 has nulls: unknown counts as broken
    assert failed["order_amount_is_qty_x_price"]["unexpected_count"] == 2
    assert failed["order_amount_is_qty_x_price"]["partial_unexpected_list"] == [False, False]
    assert sorted(r["order_id"] for r in failed["order_amount_is_qty_x_price"]["example_rows"]) == [
        "o30",
        "o32",
    ]
    assert sorted(r["order_id"] for r in failed["pay_amount_at_most_order_amount"]["example_rows"]) == [
        "o31",
        "o32",
    ]


def test_add_flags_and_always_true_compose_with_another_prepare(spark):
    """A prepare that aggregates per key, then flags on the aggregate."""
    from pyspark.sql import functions as F

    df = spark.createDataFrame([("m1", 2), ("m1", 3), ("m2", 0)], "merchant_id STRING, entries INT")
    per_merchant = add_flags(
        {"has_entries": "entries > 0"},
        base=lambda d: d.groupBy("merchant_id").agg(F.sum("entries").alias("entries")),
    )
    suite = Suite(
        name="merchant_entries",
        description="",
        expectations=lambda: always_true("has_entries"),
        prepare=per_merchant,
        example_columns=("merchant_id",),
    )

    outcome = validate(df, suite)

    assert outcome.row_count == 2
    assert [f["example_rows"] for f in outcome.failed] == [[{"merchant_id": "m2", "has_entries": False}]]


def test_suite_names_are_check_names():
    with pytest.raises(ValueError, match="Dagster check name"):
        Suite(name="silver orders", description="", expectations=list)
    with pytest.raises(ValueError, match="mostly_threshold"):
        Suite(name="ok", description="", expectations=list, mostly_threshold=1.5)
