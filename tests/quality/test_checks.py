"""The Dagster bridge: specs, results with metadata, blocking of downstream assets."""

from __future__ import annotations

import dagster as dg

from quality.checks import (
    check_results,
    check_specs,
    checked_asset,
    failures_markdown,
    require_whole_selection,
)
from quality.runner import validate
from quality.suites import Suite, between, in_set, not_null, unique_key

CRITICAL = Suite(
    name="orders_rules",
    description="SPEC §2 rules",
    expectations=lambda: [
        *not_null("order_id"),
        *between("quantity", 1),
        *in_set("status", ["paid", "shipped"]),
    ],
    example_columns=("order_id",),
)
ADVISORY = Suite(
    name="orders_keys",
    description="one row per order",
    expectations=lambda: unique_key("order_id", include_not_null=False),
    critical=False,
)
BROKEN = Suite(
    name="orders_broken",
    description="prepare refers to a missing column",
    expectations=lambda: not_null("x"),
    prepare=lambda df: df.select("no_such_column"),
)


def orders(spark):
    rows = [("o1", 1, "paid"), ("o2", 0, "paid"), ("o3", -2, "paid"), ("o3", 2, "shipped"), (None, 1, "lost")]
    return spark.createDataFrame(rows, "order_id STRING, quantity INT, status STRING").cache()


def test_check_specs_name_block_and_describe():
    specs = check_specs("silver/orders", [CRITICAL, ADVISORY])

    assert [(s.name, s.blocking, s.description) for s in specs] == [
        ("orders_rules", True, "SPEC §2 rules"),
        ("orders_keys", False, "one row per order"),
    ]
    assert {s.asset_key for s in specs} == {dg.AssetKey(["silver", "orders"])}


def test_check_results_report_failures_with_counts_and_examples(spark, tmp_path):
    df = orders(spark)

    critical, advisory, broken = check_results(
        dg.AssetKey(["silver", "orders"]),
        df,
        [CRITICAL, ADVISORY, BROKEN],
        validations_root=str(tmp_path),
        partition="2026-11-03",
    )

    assert critical.check_name == "orders_rules"
    assert critical.asset_key == dg.AssetKey(["silver", "orders"])
    assert not critical.passed
    assert critical.severity == dg.AssetCheckSeverity.ERROR
    meta = {k: v.value for k, v in critical.metadata.items()}
    assert meta["evaluated_expectations"] == 3
    assert meta["failed_expectations"] == 3
    assert meta["unexpected_count"] == 4  # 1 null order_id + 2 quantities < 1 + 1 status "lost"
    assert meta["rows"] == 5
    assert meta["elapsed_seconds"] > 0
    assert isinstance(critical.metadata["examples"], dg.MarkdownMetadataValue)
    assert "| failed | quantity | column_values_to_be_between" in meta["examples"]
    assert '"o2"' in meta["examples"] and '"o3"' in meta["examples"]  # example rows by order_id
    assert "lost" in meta["examples"]

    assert not advisory.passed
    assert advisory.severity == dg.AssetCheckSeverity.WARN
    assert advisory.metadata["unexpected_count"].value == 2

    assert not broken.passed
    assert "no_such_column" in broken.metadata["examples"].value

    assert sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*.json")) == [
        "orders_keys/2026-11-03.json",
        "orders_rules/2026-11-03.json",
    ]
    df.unpersist()


def test_passing_suite_reads_as_all_passed(spark):
    df = spark.createDataFrame([("o1", 1, "paid")], "order_id STRING, quantity INT, status STRING")
    outcome = validate(df, CRITICAL)

    [result] = check_results("silver/orders", df, [CRITICAL])

    assert result.passed
    assert failures_markdown(outcome) == "All 3 expectations passed on 1 rows."


def test_a_failed_critical_check_blocks_downstream_assets(spark):
    @dg.asset(key=["silver", "orders"], check_specs=check_specs("silver/orders", [CRITICAL]))
    def silver_orders():
        df = orders(spark)
        yield dg.MaterializeResult()
        yield from check_results("silver/orders", df, [CRITICAL])

    @dg.asset(deps=[silver_orders])
    def downstream():
        return 1

    result = dg.materialize([silver_orders, downstream], raise_on_error=False)

    [evaluation] = result.get_asset_check_evaluations()
    assert not evaluation.passed and evaluation.severity == dg.AssetCheckSeverity.ERROR
    materialized = {e.asset_key for e in result.get_asset_materialization_events()}
    assert dg.AssetKey(["silver", "orders"]) in materialized
    assert dg.AssetKey("downstream") not in materialized


def test_suites_on_the_same_frame_share_one_validation(spark, monkeypatch):
    """Suites without ``prepare`` run together, equation suites on the same frame run together,
    and each still reports exactly what it would report alone."""
    import quality.checks as checks
    from quality.suites import equation_suite

    df = orders(spark)
    positive = equation_suite(
        "orders_positive",
        "quantity is positive",
        {"quantity_positive": "quantity > 0"},
        example_columns=["order_id"],
    )
    known = equation_suite(
        "orders_known_status",
        "status is paid or shipped",
        {"status_known": "status IN ('paid', 'shipped')"},
        example_columns=["order_id", "status"],
    )
    suites = [CRITICAL, positive, ADVISORY, known]
    alone = {s.name: validate(df, s) for s in suites}

    calls = []
    real = checks.validate_suites

    def counting(frame, group):
        calls.append([s.name for s in group])
        return real(frame, group)

    monkeypatch.setattr(checks, "validate_suites", counting)
    together = check_results("silver/orders", df, suites)

    assert sorted(map(sorted, calls)) == [
        ["orders_keys", "orders_rules"],
        ["orders_known_status", "orders_positive"],
    ]
    assert [r.check_name for r in together] == [s.name for s in suites]
    for result in together:
        outcome = alone[result.check_name]
        assert result.passed == outcome.success
        assert result.metadata["unexpected_count"].value == outcome.unexpected_count
        assert result.metadata["evaluated_expectations"].value == outcome.evaluated
    # by hand: quantities 0 and -2 are not positive; "lost" is not a known status
    assert {r.check_name: r.metadata["unexpected_count"].value for r in together} == {
        "orders_rules": 4,
        "orders_positive": 2,
        "orders_keys": 2,
        "orders_known_status": 1,
    }
    examples = {r.check_name: r.metadata["examples"].value for r in together}
    assert '"o2"' in examples["orders_positive"] and '"o3"' in examples["orders_positive"]
    assert "lost" in examples["orders_known_status"]


def test_a_suite_handing_out_the_same_expectations_validates_every_time(spark):
    """Suites built once at import time may return the same expectation objects on every call;
    a validation must not leave anything on them that breaks the next one."""
    shared = [*not_null("order_id"), *between("quantity", 1)]
    suite = Suite(name="shared", description="same objects each call", expectations=lambda: shared)
    df = orders(spark)
    first = check_results("silver/orders", df, [suite, ADVISORY])
    second = check_results("silver/orders", df, [suite, ADVISORY])
    for results in (first, second):
        assert results[0].metadata["evaluated_expectations"].value == 2
        assert results[0].metadata["unexpected_count"].value == 3  # 1 null id + quantities 0, -2
    assert all(e.id is None for e in shared)


def test_a_checked_asset_runs_with_its_checks_or_without_them(spark, monkeypatch):
    """``checked_asset``: the same body runs with its checks (each suite validated and reported)
    or, selected without them, materializes with no GE validation at all."""
    import quality.checks as checks

    validated = []
    real = checks.validate_suites
    monkeypatch.setattr(
        checks, "validate_suites", lambda df, group: validated.extend(group) or real(df, group)
    )
    key = dg.AssetKey(["silver", "orders"])

    @checked_asset(
        key=key,
        check_specs=check_specs(key, [CRITICAL, ADVISORY]),
        description="orders",
        group_name="silver",
        owners=[],
        kinds={"spark"},
        tags={},
    )
    def silver_orders(context):
        yield dg.MaterializeResult()
        yield from check_results(key, orders(spark), [CRITICAL, ADVISORY], context=context)

    with_checks = dg.materialize([silver_orders], raise_on_error=False)
    assert {e.check_name: e.passed for e in with_checks.get_asset_check_evaluations()} == {
        "orders_rules": False,
        "orders_keys": False,
    }
    assert sorted(s.name for s in validated) == ["orders_keys", "orders_rules"]

    validated.clear()
    without = dg.materialize([silver_orders], selection=dg.AssetSelection.all().without_checks())
    assert without.success and without.get_asset_check_evaluations() == []
    assert [e.asset_key for e in without.get_asset_materialization_events()] == [key]
    assert validated == []

    only_keys = dg.materialize(
        [silver_orders],
        selection=dg.AssetSelection.all().without_checks()
        | dg.AssetSelection.checks(dg.AssetCheckKey(key, "orders_keys")),
        raise_on_error=False,
    )
    assert [e.check_name for e in only_keys.get_asset_check_evaluations()] == ["orders_keys"]
    assert [s.name for s in validated] == ["orders_keys"]


def test_a_multi_asset_written_together_refuses_a_partial_selection():
    @dg.multi_asset(specs=[dg.AssetSpec("a"), dg.AssetSpec("b")], can_subset=True)
    def both(context):
        require_whole_selection(context, [dg.AssetKey("a"), dg.AssetKey("b")])
        yield dg.MaterializeResult(asset_key="a")
        yield dg.MaterializeResult(asset_key="b")

    assert dg.materialize([both]).success
    partial = dg.materialize([both], selection=["a"], raise_on_error=False)
    assert not partial.success
    [failure] = [e for e in partial.all_events if e.event_type_value == "STEP_FAILURE"]
    assert "select them all (missing: b)" in str(failure.event_specific_data.error)
