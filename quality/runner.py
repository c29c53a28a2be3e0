"""Run a :class:`~quality.suites.Suite` on a Spark DataFrame with Great Expectations 1.x.

One ephemeral GE context, Spark datasource, DataFrame asset and whole-DataFrame batch
definition are built lazily, once per process, on the first validation; every validation then
only builds a batch on the given DataFrame. Validations are serialized by a lock (GE keeps
per-process state).

A validation costs as few Spark passes as GE allows:

0. suites that validate the same frame (:func:`validate_suites`, used by
   :func:`quality.checks.check_results`) run as ONE GE validation and are split back per suite;
1. the whole suite runs with ``result_format`` ``BASIC`` and ``partial_unexpected_count=0``:
   GE bundles all aggregate metrics (row count, null and unexpected counts) of the frame into
   one ``select`` (uniqueness expectations add a window count each) and the zero-row example
   queries are optimized away by Spark;
2. only if some expectations found unexpected values, those are re-run to fetch up to
   :data:`EXAMPLES` examples (``SUMMARY`` with the suite's ``example_columns`` as GE's
   ``unexpected_index_column_names``, so each example names its row).

The caller caches the DataFrame (it is scanned once per validation); a frame derived by
``suite.prepare`` is cached here for the validation and released after it.
"""

from __future__ import annotations

import copy
import datetime as _dt
import json
import os
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")

import great_expectations as gx  # noqa: E402
from great_expectations.core.expectation_validation_result import (  # noqa: E402
    ExpectationSuiteValidationResult,
)
from great_expectations.core.run_identifier import RunIdentifier  # noqa: E402
from great_expectations.util import convert_to_json_serializable  # noqa: E402
from great_expectations.validator.validator import calc_validation_statistics  # noqa: E402

from quality.suites import Suite  # noqa: E402

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

EXAMPLES = 5
"""Failing values (and rows) shown per expectation."""

DATASOURCE_NAME = "onetrack_spark"
ASSET_NAME = "dataframe"
BATCH_DEFINITION_NAME = "whole_dataframe"

# Keys of an expectation's kwargs that describe the run, not the rule.
_RUN_KWARGS = frozenset({"batch_id", "result_format", "catch_exceptions", "include_config"})


@dataclass
class SuiteOutcome:
    """The result of one suite on one DataFrame.

    ``failed`` has one dict per failed expectation: ``expectation_type``, ``kwargs`` (column,
    bounds...), ``unexpected_count``, ``unexpected_percent``, ``partial_unexpected_list`` (<= 5
    failing values), ``example_rows`` (<= 5 dicts of ``example_columns`` of failing rows),
    ``observed_value`` (for table/schema expectations) and ``exception`` (when GE could not
    evaluate it, e.g. a missing column). ``tolerated`` has the same for expectations that passed
    thanks to ``mostly`` while finding unexpected values. ``validation_result`` is GE's
    ``ExpectationSuiteValidationResult`` (for :func:`record_validation` and Data Docs).
    """

    suite: Suite
    success: bool
    evaluated: int
    failed: list[dict]
    elapsed_seconds: float = 0.0
    row_count: int | None = None
    tolerated: list[dict] = field(default_factory=list)
    validation_result: ExpectationSuiteValidationResult | None = field(default=None, repr=False)

    @property
    def unexpected_count(self) -> int:
        """Unexpected values over the failed expectations."""
        return sum(f.get("unexpected_count") or 0 for f in self.failed)


class _GxRuntime:
    """The per-process GE objects, built on first use."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self._context = None
        self._datasource = None
        self._batch_definition = None

    @property
    def context(self):
        with self.lock:
            if self._context is None:
                from great_expectations.data_context.types.base import (
                    DataContextConfig,
                    InMemoryStoreBackendDefaults,
                    ProgressBarsConfig,
                )

                config = DataContextConfig(
                    store_backend_defaults=InMemoryStoreBackendDefaults(init_temp_docs_sites=False),
                    analytics_enabled=False,
                    progress_bars=ProgressBarsConfig(globally=False, metric_calculations=False),
                )
                self._context = gx.get_context(mode="ephemeral", project_config=config)
            return self._context

    def batch_definition(self, spark: SparkSession):
        """The whole-DataFrame batch definition, its datasource bound to ``spark``."""
        with self.lock:
            if self._batch_definition is None:
                # persist=False: the caller caches; GE would otherwise persist() every frame it
                # sees and never release it.
                datasource = self.context.data_sources.add_spark(name=DATASOURCE_NAME, persist=False)
                asset = datasource.add_dataframe_asset(name=ASSET_NAME)
                self._datasource = datasource
                self._batch_definition = asset.add_batch_definition_whole_dataframe(BATCH_DEFINITION_NAME)
            if self._datasource._spark is not spark:
                # Give GE the caller's session rather than letting it look one up (it would try
                # Spark Connect first), and rebuild the engine if the session changed.
                self._datasource._spark = spark
                self._datasource._execution_engine = None
            return self._batch_definition

    def reset_metric_cache(self) -> None:
        """GE's engine caches metrics by batch id, which is the same for every DataFrame here:
        drop them so nothing of one validation is reused by (or kept alive after) another."""
        engine = getattr(self._datasource, "_execution_engine", None) if self._datasource else None
        cache = getattr(engine, "_metric_cache", None)
        if isinstance(cache, dict):
            cache.clear()


_RUNTIME = _GxRuntime()


def gx_context():
    """The process's ephemeral GE context (e.g. to render Data Docs from recorded results)."""
    return _RUNTIME.context


def suite_expectations(suite: Suite) -> list:
    """Fresh GE expectations of ``suite``, with its tolerance applied.

    Copies, so that a suite whose ``expectations()`` hands out the same objects twice never sees
    the ids or tolerance one validation gave them (GE refuses an expectation that has an id).
    """
    expectations = []
    for original in suite.expectations():
        expectation = copy.copy(original)
        expectation.id = None
        expectations.append(expectation)
    if suite.mostly_threshold is not None:
        for expectation in expectations:
            if "mostly" in type(expectation).__fields__ and getattr(expectation, "mostly", None) in (
                None,
                1,
                1.0,
            ):
                expectation.mostly = suite.mostly_threshold
    return expectations


_BUSINESS_TZ = ZoneInfo("Asia/Shanghai")


def jsonable(value: Any) -> Any:
    """``value`` as plain JSON types, keeping what GE's own conversion loses.

    GE turns a ``Decimal`` into a float; money examples stay exact strings here (``"0.10"``).
    PySpark returns a ``TIMESTAMP`` as a naive datetime in the *Python process's* time zone;
    examples show it as the instant in business time (``"2026-11-01T00:00:00+08:00"``).
    """
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [jsonable(v) for v in value]
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, _dt.datetime):
        return value.astimezone(_BUSINESS_TZ).isoformat()  # naive = local time, per Python
    if isinstance(value, _dt.date):
        return value.isoformat()
    if isinstance(value, (bytes, bytearray)):
        return value.hex()
    if value is None or isinstance(value, (str, bool, int, float)):
        return value
    return convert_to_json_serializable(value)


def _result_dict(result) -> dict:
    return dict(result.result or {})


def _has_unexpected(result) -> bool:
    return bool(_result_dict(result).get("unexpected_count"))


def _summarize(result) -> dict:
    config = result.expectation_config
    values = _result_dict(result)
    exception = None
    info = result.exception_info or {}
    if info.get("raised_exception"):
        exception = info.get("exception_message")
    else:  # GE files exceptions per metric when several expectations share one
        for nested in info.values() if isinstance(info, dict) else ():
            if isinstance(nested, dict) and nested.get("raised_exception"):
                exception = nested.get("exception_message")
                break
    kwargs = {k: v for k, v in config.kwargs.items() if k not in _RUN_KWARGS and v is not None}
    return {
        "expectation_type": config.type,
        "kwargs": jsonable(kwargs),
        "unexpected_count": values.get("unexpected_count"),
        "unexpected_percent": values.get("unexpected_percent"),
        "partial_unexpected_list": jsonable(list(values.get("partial_unexpected_list") or [])[:EXAMPLES]),
        "example_rows": jsonable(list(values.get("partial_unexpected_index_list") or [])[:EXAMPLES]),
        "observed_value": jsonable(values.get("observed_value")),
        "exception": exception,
    }


def _row_count(results, frame: DataFrame) -> int:
    for result in results:
        values = _result_dict(result)
        if isinstance(values.get("element_count"), int):
            return values["element_count"]
        if result.expectation_config.type == "expect_table_row_count_to_be_between" and isinstance(
            values.get("observed_value"), int
        ):
            return values["observed_value"]
    return frame.count()


def validate(df: DataFrame, suite: Suite) -> SuiteOutcome:
    """Validate ``df`` (after ``suite.prepare``) against the whole suite in one GE validation.

    GE turns an expectation it cannot evaluate (a missing column, a wrong type) into a failed
    result with an ``exception``; an error in ``suite.prepare`` is raised.
    """
    return validate_suites(df, [suite])[0]


def validate_suites(df: DataFrame, suites: list[Suite]) -> list[SuiteOutcome]:
    """Validate ``df`` against several suites that share one ``prepare`` in ONE GE validation.

    The expectations of all suites are evaluated together (GE bundles their aggregate metrics
    into as few Spark passes as it can), then the results are split back into one
    :class:`SuiteOutcome` per suite, each with its own GE validation result, exactly as if the
    suites had been run one by one. Examples of failures are fetched per suite (each suite has its
    own ``example_columns``).
    """
    if not suites:
        return []
    prepare = suites[0].prepare
    if any(s.prepare is not prepare for s in suites):
        raise ValueError("suites validated together must share their prepare function")
    started = time.perf_counter()
    with _RUNTIME.lock:
        frame = prepare(df) if prepare is not None else df
        cached_here = frame is not df and not frame.storageLevel.useMemory and not frame.storageLevel.useDisk
        if cached_here:
            frame = frame.persist()
        try:
            batch_definition = _RUNTIME.batch_definition(frame.sparkSession)
            _RUNTIME.reset_metric_cache()
            batch = batch_definition.get_batch(batch_parameters={"dataframe": frame})
            expectation_lists = [suite_expectations(suite) for suite in suites]
            # GE returns results in its own order (expectations whose metrics failed first), so
            # every expectation gets an id to find its suite and position again.
            combined = gx.ExpectationSuite(
                name="+".join(s.name for s in suites),
                expectations=[e for expectations in expectation_lists for e in expectations],
            )
            owner: dict[str, tuple[int, int]] = {}
            for s_index, expectations in enumerate(expectation_lists):
                for e_index, expectation in enumerate(expectations):
                    expectation.id = str(uuid.uuid4())  # allowed once the suite holds it
                    owner[expectation.id] = (s_index, e_index)
            first = batch.validate(
                combined, result_format={"result_format": "BASIC", "partial_unexpected_count": 0}
            )
            all_results = list(first.results)
            per_suite: list[list] = [[None] * len(e) for e in expectation_lists]
            for result in all_results:
                s_index, e_index = owner[result.expectation_config.id]
                per_suite[s_index][e_index] = result
            if any(r is None for results in per_suite for r in results):
                raise RuntimeError(f"GE returned {len(all_results)} results for {len(owner)} expectations")
            for suite, results in zip(suites, per_suite, strict=True):
                _add_examples(batch, suite, results)
            row_count = _row_count(all_results, frame)
        finally:
            _RUNTIME.reset_metric_cache()
            if cached_here:
                frame.unpersist()

    elapsed = round(time.perf_counter() - started, 3)
    total = max(sum(len(r) for r in per_suite), 1)
    return [
        _outcome(suite, results, first.batch_id, row_count, round(elapsed * len(results) / total, 3))
        for suite, results in zip(suites, per_suite, strict=True)
    ]


def _add_examples(batch, suite: Suite, results: list) -> None:
    """Re-run the expectations that found unexpected values to fetch examples (in place)."""
    with_examples = [i for i, r in enumerate(results) if _has_unexpected(r)]
    if not with_examples:
        return
    result_format: dict[str, Any] = {"result_format": "BASIC", "partial_unexpected_count": EXAMPLES}
    if suite.example_columns:
        result_format = {
            "result_format": "SUMMARY",
            "partial_unexpected_count": EXAMPLES,
            "unexpected_index_column_names": list(suite.example_columns),
            "return_unexpected_index_query": False,
        }
    expectations = []
    for i in with_examples:
        expectation = results[i].expectation_config.to_domain_obj()
        expectation.id = None  # it may join a new suite only without the id of the first pass
        expectations.append(expectation)
    second_suite = gx.ExpectationSuite(name=suite.name, expectations=expectations)
    position = {}
    for i, expectation in zip(with_examples, expectations, strict=True):
        expectation.id = str(uuid.uuid4())
        position[expectation.id] = i
    second = batch.validate(second_suite, result_format=result_format)
    for detailed in second.results:
        # Keep the counts of the first pass if fetching examples itself failed
        # (e.g. an example column missing from the frame).
        if not (detailed.exception_info or {}).get("raised_exception"):
            results[position[detailed.expectation_config.id]] = detailed


def _outcome(suite: Suite, results: list, batch_id, row_count: int, elapsed: float) -> SuiteOutcome:
    statistics = calc_validation_statistics(results)
    validation_result = ExpectationSuiteValidationResult(
        results=results,
        success=statistics.success,
        suite_name=suite.name,
        statistics={
            "evaluated_expectations": statistics.evaluated_expectations,
            "successful_expectations": statistics.successful_expectations,
            "unsuccessful_expectations": statistics.unsuccessful_expectations,
            "success_percent": statistics.success_percent,
        },
        meta={
            "great_expectations_version": gx.__version__,
            "active_batch_definition": {
                "datasource_name": DATASOURCE_NAME,
                "data_asset_name": ASSET_NAME,
            },
        },
        batch_id=batch_id,
    )
    failed = [_summarize(r) for r in results if not r.success]
    tolerated = [_summarize(r) for r in results if r.success and _has_unexpected(r)]
    return SuiteOutcome(
        suite=suite,
        success=bool(statistics.success),
        evaluated=statistics.evaluated_expectations,
        failed=failed,
        elapsed_seconds=elapsed,
        row_count=row_count,
        tolerated=tolerated,
        validation_result=validation_result,
    )


# ---------------------------------------------------------------------------------------------
# Keeping the latest validation results (for GE Data Docs)
# ---------------------------------------------------------------------------------------------


def validations_dir(warehouse_dir: str) -> str:
    """Where validation results live: ``<warehouse>/quality/validations``."""
    return f"{warehouse_dir.rstrip('/')}/quality/validations"


def validation_path(root: str, suite_name: str, partition: str | None = None) -> Path:
    """``<root>/<suite>/<partition>.json`` (``unpartitioned.json`` without a partition)."""
    if "://" in root:
        if not root.startswith("file://"):
            raise NotImplementedError(f"validation results are written to local paths only, got {root}")
        root = root[len("file://") :]
    return Path(root) / suite_name / f"{partition or 'unpartitioned'}.json"


def record_validation(
    outcome: SuiteOutcome,
    root: str,
    partition: str | None = None,
    *,
    asset_key: str | None = None,
    run_id: str | None = None,
    extra: dict | None = None,
) -> Path:
    """Write ``outcome``'s GE validation result as JSON to ``<root>/<suite>/<partition>.json``.

    ``root`` is typically :func:`validations_dir` of the warehouse. A re-run of a partition
    replaces its file (written atomically). The JSON is GE's own
    ``ExpectationSuiteValidationResult`` format (loadable with
    ``ExpectationSuiteValidationResultSchema``), with ``meta.run_id`` / ``validation_time`` set as
    a GE checkpoint would, so Data Docs can render it, and ``meta.onetrack`` holding the asset,
    partition and timing, and ``extra`` (what was validated, e.g. a snapshot's table version:
    see :func:`passed_validation`).
    """
    if outcome.validation_result is None:
        raise ValueError(f"outcome of {outcome.suite.name} carries no validation result")
    now = datetime.now(_dt.UTC)
    result = outcome.validation_result
    result.meta["run_id"] = RunIdentifier(run_name=run_id or partition or "unpartitioned", run_time=now)
    result.meta["validation_time"] = now
    result.meta["onetrack"] = {
        "asset_key": asset_key,
        "partition": partition,
        "suite": outcome.suite.name,
        "description": outcome.suite.description,
        "critical": outcome.suite.critical,
        "row_count": outcome.row_count,
        "elapsed_seconds": outcome.elapsed_seconds,
        "dagster_run_id": run_id,
        **(extra or {}),
    }
    path = validation_path(root, outcome.suite.name, partition)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(result.to_json_dict(), indent=2, sort_keys=True, default=str) + "\n")
    os.replace(tmp, path)
    return path


def passed_validation(root: str, suite_name: str, partition: str | None = None) -> dict | None:
    """``meta.onetrack`` of the latest validation recorded for ``suite_name`` and ``partition``
    when it succeeded; None when there is none, it failed or cannot be read."""
    path = validation_path(root, suite_name, partition)
    try:
        result = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    if result.get("success") is not True:
        return None
    return (result.get("meta") or {}).get("onetrack") or {}


def passed_with(root: str, suite_names, partition: str | None, **recorded) -> bool:
    """Whether every suite of ``suite_names`` passed on ``partition`` with ``recorded`` (the
    ``record`` its validation was written with, e.g. the version it validated) as given."""
    found = [passed_validation(root, name, partition) for name in suite_names]
    return all(p is not None and all(p.get(k) == v for k, v in recorded.items()) for p in found)
