"""The Dagster bridge: suites become asset checks, validations become check results.

(``dagster-ge`` only supports GE < 1.0, hence this module.) In an asset::

    SUITES = [orders_schema, orders_rules]

    @dg.asset(check_specs=check_specs("silver/orders", SUITES), ...)
    def orders(context, spark: SparkResource):
        df = compute_orders(...).cache()
        ...write...
        yield dg.MaterializeResult(metadata={...})
        yield from check_results("silver/orders", df, SUITES,
                                 validations_root=validations_dir(warehouse), partition=context.partition_key)
        df.unpersist()

A critical suite is a *blocking* check with severity ERROR: when it fails, Dagster does not
materialize the assets downstream of this one in the run.

The onetrack assets use :func:`checked_asset` instead of ``@dg.asset`` and pass their ``context``
to :func:`check_results`, so that a run may also leave the checks out (the benchmark's history
days); a plain ``@dg.asset`` with ``check_specs`` always runs them.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import dagster as dg

from quality.runner import EXAMPLES, SuiteOutcome, record_validation, validate_suites
from quality.suites import Suite, merge_flag_prepares

if TYPE_CHECKING:
    from pyspark.sql import DataFrame


def to_asset_key(asset_key: str | Sequence[str] | dg.AssetKey) -> dg.AssetKey:
    """``"silver/orders"`` (slash-separated), ``["silver", "orders"]`` or an ``AssetKey``."""
    if isinstance(asset_key, dg.AssetKey):
        return asset_key
    if isinstance(asset_key, str):
        return dg.AssetKey.from_user_string(asset_key)
    return dg.AssetKey(list(asset_key))


def severity(suite: Suite) -> dg.AssetCheckSeverity:
    return dg.AssetCheckSeverity.ERROR if suite.critical else dg.AssetCheckSeverity.WARN


def check_specs(
    asset_key: str | Sequence[str] | dg.AssetKey,
    suites: Iterable[Suite],
    **spec_kwargs: Any,
) -> list[dg.AssetCheckSpec]:
    """One ``AssetCheckSpec`` per suite: ``name=suite.name``, ``blocking=suite.critical``.

    ``spec_kwargs`` go to every spec (e.g. ``partitions_def=``, ``additional_deps=``).
    """
    key = to_asset_key(asset_key)
    suites = list(suites)
    names = [s.name for s in suites]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ValueError(f"duplicate suite names for {key.to_user_string()}: {duplicates}")
    return [
        dg.AssetCheckSpec(
            name=suite.name,
            asset=key,
            description=suite.description,
            blocking=suite.critical,
            **spec_kwargs,
        )
        for suite in suites
    ]


def _cell(value: Any, limit: int = 120) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str, ensure_ascii=False)
    text = text.replace("|", "\\|").replace("\n", " ")
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _target(kwargs: dict) -> str:
    for key in ("column", "column_list", "column_set"):
        if key in kwargs:
            value = kwargs[key]
            return ", ".join(value) if isinstance(value, list) else str(value)
    if "column_A" in kwargs:
        return f"{kwargs['column_A']} = {kwargs.get('column_B')}"
    return "(table)"


def _rule(failure: dict) -> str:
    kwargs = {
        k: v
        for k, v in failure["kwargs"].items()
        if k not in ("column", "column_list", "column_A", "column_B", "column_set")
    }
    name = failure["expectation_type"].removeprefix("expect_")
    return f"{name} {_cell(kwargs, 80)}" if kwargs else name


def failures_markdown(outcome: SuiteOutcome) -> str:
    """A markdown table of the failed (and tolerated) expectations with examples."""
    rows = [(f, "failed") for f in outcome.failed] + [(f, "tolerated") for f in outcome.tolerated]
    if not rows:
        return f"All {outcome.evaluated} expectations passed on {outcome.row_count} rows."
    lines = [
        "| status | column | rule | unexpected | % | examples |",
        "|---|---|---|---:|---:|---|",
    ]
    for failure, status in rows:
        if failure.get("exception"):
            examples = f"error: {failure['exception']}"
        elif failure.get("example_rows"):
            examples = "; ".join(_cell(r, 60) for r in failure["example_rows"][:EXAMPLES])
        elif failure.get("partial_unexpected_list"):
            examples = ", ".join(_cell(v, 40) for v in failure["partial_unexpected_list"][:EXAMPLES])
        elif failure.get("observed_value") is not None:
            examples = f"observed: {_cell(failure['observed_value'], 80)}"
        else:
            examples = ""
        count = failure.get("unexpected_count")
        percent = failure.get("unexpected_percent")
        lines.append(
            "| {} | {} | {} | {} | {} | {} |".format(
                status,
                _cell(_target(failure["kwargs"])),
                _rule(failure),
                "" if count is None else count,
                "" if percent is None else f"{percent:.4g}",
                _cell(examples, 300),
            )
        )
    return "\n".join(lines)


def check_result(
    asset_key: str | Sequence[str] | dg.AssetKey, outcome: SuiteOutcome, record: dict | None = None
) -> dg.AssetCheckResult:
    """The ``AssetCheckResult`` of one suite outcome (``record["validated"]``: what the rows were)."""
    suite = outcome.suite
    record = record or {}
    validated = {"validated": dg.MetadataValue.text(record["validated"])} if "validated" in record else {}
    return dg.AssetCheckResult(
        asset_key=to_asset_key(asset_key),
        check_name=suite.name,
        passed=outcome.success,
        severity=severity(suite),
        description=suite.description,
        metadata={
            "evaluated_expectations": dg.MetadataValue.int(outcome.evaluated),
            "failed_expectations": dg.MetadataValue.int(len(outcome.failed)),
            "unexpected_count": dg.MetadataValue.int(outcome.unexpected_count),
            "examples": dg.MetadataValue.md(failures_markdown(outcome)),
            "elapsed_seconds": dg.MetadataValue.float(float(outcome.elapsed_seconds)),
            "rows": dg.MetadataValue.int(int(outcome.row_count or 0)),
            **validated,
        },
    )


def _error_outcome(suite: Suite, error: Exception) -> SuiteOutcome:
    return SuiteOutcome(
        suite=suite,
        success=False,
        evaluated=0,
        failed=[
            {
                "expectation_type": "prepare_and_validate",
                "kwargs": {},
                "unexpected_count": None,
                "unexpected_percent": None,
                "partial_unexpected_list": [],
                "example_rows": [],
                "observed_value": None,
                "exception": f"{type(error).__name__}: {error}",
            }
        ],
    )


def selected_suites(
    context: dg.AssetExecutionContext, asset_key: str | Sequence[str] | dg.AssetKey, suites: Iterable[Suite]
) -> list[Suite]:
    """The suites of ``suites`` whose checks on ``asset_key`` this run selected.

    An asset body builds a frame only its checks read (and nothing else) only when this is not
    empty: a run without the checks (see :func:`checked_asset`) then skips that work too.
    """
    key = to_asset_key(asset_key)
    selected = context.selected_asset_check_keys
    return [s for s in suites if dg.AssetCheckKey(key, s.name) in selected]


def check_results(
    asset_key: str | Sequence[str] | dg.AssetKey,
    df: DataFrame,
    suites: Iterable[Suite],
    *,
    validations_root: str | None = None,
    partition: str | None = None,
    run_id: str | None = None,
    context: dg.AssetExecutionContext | None = None,
    record: dict | None = None,
) -> list[dg.AssetCheckResult]:
    """Validate ``df`` with each suite and return one ``AssetCheckResult`` per suite.

    With ``context``, only the suites whose checks the run selected are validated (a run without
    the checks, see :func:`checked_asset`, validates nothing).

    Cache ``df`` first: every suite reads it. A suite that cannot run at all (its ``prepare``
    raises) gives a failed result carrying the error instead of failing the step, so the other
    suites still report. With ``validations_root``, each GE validation result is also written
    to ``<validations_root>/<suite>/<partition>.json`` (see :func:`quality.runner.record_validation`),
    with ``record`` (what ``df`` is, e.g. a snapshot's version) in its ``meta.onetrack``.
    """
    key = to_asset_key(asset_key)
    suites = list(suites) if context is None else selected_suites(context, key, suites)
    # Suites that validate the same frame (the same ``prepare``, usually none) run as one GE
    # validation: one set of Spark passes instead of one per suite.
    groups: dict[object, list[Suite]] = {}
    for suite in suites:
        prepare = suite.prepare
        mergeable = getattr(prepare, "flag_conditions", None) is not None and prepare.flag_base is None
        groups.setdefault("flags" if mergeable else id(prepare), []).append(suite)
    if len(groups.get("flags", [])) > 1:
        # Equation suites on the same frame: one frame with every flag, one validation.
        merged = merge_flag_prepares([s.prepare for s in groups["flags"]])
        if merged is None:
            for suite in groups.pop("flags"):
                groups[id(suite.prepare)] = [suite]
        else:
            groups["flags"] = [replace(s, prepare=merged) for s in groups["flags"]]
    outcomes: dict[str, SuiteOutcome] = {}
    for group in groups.values():
        try:
            for outcome in validate_suites(df, group):
                outcomes[outcome.suite.name] = outcome
        except Exception as error:  # noqa: BLE001 - reported as failed checks, see docstring
            for suite in group:
                outcomes[suite.name] = _error_outcome(suite, error)
    results: list[dg.AssetCheckResult] = []
    for suite in suites:
        outcome = outcomes[suite.name]
        if validations_root is not None and outcome.validation_result is not None:
            record_validation(
                outcome,
                validations_root,
                partition,
                asset_key=key.to_user_string(),
                run_id=run_id,
                extra=record,
            )
        results.append(check_result(key, outcome, record))
    return results


def checked_asset(
    *,
    key: dg.AssetKey,
    check_specs: Sequence[dg.AssetCheckSpec],
    description: str,
    group_name: str,
    owners: Sequence[str],
    kinds: set[str],
    tags: dict[str, str],
    partitions_def: dg.PartitionsDefinition | None = None,
    deps: Sequence[dg.AssetKey] = (),
    pool: str | None = None,
):
    """``@asset`` with its checks, whose runs may leave the checks out.

    A one-asset ``@multi_asset`` with ``can_subset``: Dagster can then run the asset without its
    checks (``AssetSelection.without_checks()``; the benchmark's history days do), which a plain
    ``@asset`` with ``check_specs`` cannot. The body passes its ``context`` to
    :func:`check_results`, which validates only the selected checks. The op keeps the ``@asset``
    name (``key.to_python_identifier()``), so step names do not change.
    """
    return dg.multi_asset(
        name=key.to_python_identifier(),
        specs=[
            dg.AssetSpec(
                key,
                deps=deps,
                description=description,
                group_name=group_name,
                owners=owners,
                kinds=kinds,
                tags=tags,
            )
        ],
        check_specs=check_specs,
        partitions_def=partitions_def,
        pool=pool,
        can_subset=True,
    )


def require_whole_selection(context: dg.AssetExecutionContext, keys: Iterable[dg.AssetKey]) -> None:
    """For a multi-asset whose tables are written together (``can_subset`` only so that its checks
    can be left out): a run that selects some of its assets fails with a clear message."""
    missing = set(keys) - set(context.selected_asset_keys)
    if missing:
        names = ", ".join(sorted(k.to_user_string() for k in missing))
        raise dg.DagsterInvariantViolationError(
            f"{context.op_def.name} writes its assets together; select them all (missing: {names})"
        )
