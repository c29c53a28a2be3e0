"""The runner: one GE validation per suite, examples, tolerance, caching, recorded results."""

from __future__ import annotations

import json
import uuid

from great_expectations.core.expectation_validation_result import ExpectationSuiteValidationResultSchema

from quality import runner
from quality.runner import record_validation, validate, validation_path, validations_dir
from quality.suites import Suite, add_flags, always_true, between, in_set, not_null


def spark_jobs(spark, action) -> tuple[object, int]:
    """Run ``action()`` and count the Spark jobs it started.

    Adaptive execution runs every shuffle stage as a job of its own, and a Dagster run earlier in
    the session turns it on in the shared session (the resource's settings): it is off here, as
    the test session starts, so the count is the same whatever ran before.
    """
    sc = spark.sparkContext
    # A fresh name: Spark keeps the job ids of a group, and id(action) can repeat after GC.
    group = f"quality-test-{uuid.uuid4().hex}"
    adaptive = spark.conf.get("spark.sql.adaptive.enabled")
    spark.conf.set("spark.sql.adaptive.enabled", "false")
    sc.setJobGroup(group, group)
    try:
        value = action()
    finally:
        sc.setLocalProperty("spark.jobGroup.id", None)
        spark.conf.set("spark.sql.adaptive.enabled", adaptive)
    return value, len(sc.statusTracker().getJobIdsForGroup(group))


def numbers(spark, n: int = 20):
    """ids 0..n-1, ``k`` = id % 10, ``amount`` = id / 10 as DECIMAL(18,2), ``status`` paid/shipped."""
    return spark.sql(
        f"SELECT CAST(id AS STRING) AS order_id, id % 10 AS k, CAST(id / 10 AS DECIMAL(18,2)) AS amount, "
        f"IF(id % 2 = 0, 'paid', 'shipped') AS status FROM range({n})"
    ).cache()


def five() -> list:
    return [
        *not_null(["order_id", "status"]),
        *in_set("status", ["paid", "shipped"]),
        *between("amount", 0, 1),  # fails for 1.10 .. 1.90: 9 rows of 20
        *between("k", 0, 9),
    ]


FIVE = Suite(name="five", description="five expectations", expectations=five, example_columns=("order_id",))


def test_a_passing_suite_is_one_spark_pass(spark):
    df = numbers(spark)
    df.count()
    passing = Suite(name="passing", description="", expectations=lambda: five()[:3] + five()[4:])

    outcome, jobs = spark_jobs(spark, lambda: validate(df, passing))

    assert outcome.success and outcome.evaluated == 4 and outcome.row_count == 20
    # GE bundles every aggregate into one select; it splits the bundle in two dependency levels
    assert jobs <= 2
    df.unpersist()


def test_failed_expectations_carry_counts_and_at_most_five_examples(spark):
    df = numbers(spark)

    outcome = validate(df, FIVE)

    assert not outcome.success
    assert outcome.evaluated == 5
    assert outcome.row_count == 20
    assert outcome.elapsed_seconds > 0
    [failure] = outcome.failed
    assert failure["expectation_type"] == "expect_column_values_to_be_between"
    # GE keeps bounds as floats and drops kwargs left at their defaults
    assert failure["kwargs"] == {"column": "amount", "min_value": 0, "max_value": 1}
    assert failure["unexpected_count"] == 9
    assert failure["unexpected_percent"] == 45.0
    assert len(failure["partial_unexpected_list"]) == 5
    assert set(failure["partial_unexpected_list"]) <= {f"1.{i}0" for i in range(1, 10)}
    assert len(failure["example_rows"]) == 5
    assert all(int(row["order_id"]) >= 11 for row in failure["example_rows"])
    assert outcome.unexpected_count == 9
    df.unpersist()


def test_mostly_threshold_tolerates_and_still_reports(spark):
    df = numbers(spark)
    lenient = Suite(name="lenient", description="", expectations=five, mostly_threshold=0.5)
    strict = Suite(name="strict", description="", expectations=five, mostly_threshold=0.6)

    tolerated = validate(df, lenient)  # 55 % within bounds >= 50 %
    failed = validate(df, strict)  # 55 % < 60 %

    assert tolerated.success and tolerated.failed == []
    assert [
        (t["kwargs"]["column"], t["kwargs"]["mostly"], t["unexpected_count"]) for t in tolerated.tolerated
    ] == [("amount", 0.5, 9)]
    assert not failed.success and failed.failed[0]["unexpected_count"] == 9
    df.unpersist()


def test_context_is_built_once_and_results_never_leak_between_frames(spark):
    bad = numbers(spark)
    good = spark.sql(
        "SELECT CAST(id AS STRING) AS order_id, id AS k, CAST(0.5 AS DECIMAL(18,2)) AS amount, "
        "'paid' AS status FROM range(3)"
    )
    context = runner.gx_context()

    first = validate(bad, FIVE)
    second = validate(good, FIVE)
    third = validate(bad, FIVE)

    assert runner.gx_context() is context
    assert [ds.name for ds in context.data_sources.all().values()] == [runner.DATASOURCE_NAME]
    assert (first.success, second.success, third.success) == (False, True, False)
    assert (first.row_count, second.row_count, third.row_count) == (20, 3, 20)
    assert third.failed == first.failed
    bad.unpersist()


def _persistent_rdds(spark) -> int:
    return spark.sparkContext._jsc.sc().getPersistentRDDs().size()


def test_a_prepared_frame_is_cached_for_the_validation_and_released(spark):
    df = numbers(spark)
    df.count()
    suite = Suite(
        name="per_key",
        description="",
        expectations=lambda: always_true("big_enough"),
        prepare=add_flags(
            {"big_enough": "n >= 2"}, base=lambda d: d.groupBy("k").count().withColumnRenamed("count", "n")
        ),
        example_columns=("k",),
    )
    before = _persistent_rdds(spark)

    outcome = validate(df, suite)

    assert outcome.success and outcome.row_count == 10
    assert _persistent_rdds(spark) == before
    df.unpersist()


def test_recorded_validation_is_ge_json_per_suite_and_partition(spark, tmp_path):
    df = numbers(spark)
    outcome = validate(df, FIVE)
    root = validations_dir(str(tmp_path / "warehouse"))

    path = record_validation(outcome, root, "2026-11-03", asset_key="silver/orders", run_id="run-1")
    record_validation(outcome, root, "2026-11-03", asset_key="silver/orders", run_id="run-2")  # replaces

    assert path == tmp_path / "warehouse" / "quality" / "validations" / "five" / "2026-11-03.json"
    assert path == validation_path(root, "five", "2026-11-03")
    assert sorted(p.name for p in path.parent.iterdir()) == ["2026-11-03.json"]
    payload = json.loads(path.read_text())
    assert payload["meta"]["onetrack"]["asset_key"] == "silver/orders"
    assert payload["meta"]["onetrack"]["dagster_run_id"] == "run-2"
    assert payload["meta"]["run_id"]["run_name"] == "run-2"
    loaded = ExpectationSuiteValidationResultSchema().load(payload)
    assert loaded["suite_name"] == "five"
    assert loaded["statistics"]["unsuccessful_expectations"] == 1
    df.unpersist()
