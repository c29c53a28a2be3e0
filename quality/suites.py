"""Quality suites as code, and the builders stage owners compose them from.

A :class:`Suite` is one Great Expectations expectation suite run on one DataFrame. It becomes
one Dagster asset check of the same name (see :mod:`quality.checks`), so a suite groups the
expectations that should pass or fail together: e.g. ``silver_orders_schema`` and
``silver_orders_rules``. ``expectations`` is a function returning *fresh* GE expectation
objects: GE binds an expectation object to the suite it is added to, so objects are never
shared between runs.

Builders return lists, so a suite reads as a sum::

    Suite(
        name="silver_orders_rules",
        description="SPEC §2 field rules on accepted order versions",
        expectations=lambda: [
            *not_null(["order_id", "user_id", "updated_at"]),
            *in_set("status", ["paid", "shipped", "delivered", "completed", "cancelled"]),
            *between("quantity", min_value=1),
        ],
    )

GE's Spark engine, things to know (each is covered by ``tests/quality``):

- Every column-map expectation (``in_set``, ``between``, ``unique_key``, ``column_pair_equal``)
  skips nulls: a null is "missing", not "unexpected". Add ``not_null`` where null is wrong.
- ``ExpectColumnValuesToBeOfType`` on Spark takes a ``pyspark.sql.types`` class name
  (``"StringType"``, ``"DecimalType"``, ``"TimestampType"``...), not ``"string"`` or
  ``"decimal(18,2)"``, and ignores precision and scale. :func:`schema_expectations` therefore
  adds :class:`~quality.expectations.ExpectColumnValuesToHaveSparkType` (exact
  ``"decimal(18,2)"``) for parameterised types.
- Bounds on timestamp columns: PySpark turns a *naive* ``datetime`` into an instant with the
  machine's time zone, so :func:`between` refuses naive datetimes; pass an aware datetime or a
  string with an offset (``"2026-11-01T00:00:00+08:00"``). Dates and ``Decimal`` bounds are fine
  (GE turns a ``Decimal`` bound into a float; Spark compares a ``DECIMAL(18,2)`` column with
  it as a double, exact for amounts below 10^13 CNY).
- Examples of failing values come back JSON-ified: decimals and timestamps as strings.
"""

from __future__ import annotations

import datetime as _dt
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import great_expectations.expectations as gxe

from quality.expectations import ExpectColumnValuesToHaveSparkType

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame
    from pyspark.sql.types import StructType

_CHECK_NAME = re.compile(r"^[A-Za-z0-9_]+$")

# Spark types whose class name says everything; others (decimal(p,s), arrays, maps, structs)
# also get an exact type-string expectation.
_PLAIN_TYPES = frozenset(
    {
        "StringType",
        "BooleanType",
        "ByteType",
        "ShortType",
        "IntegerType",
        "LongType",
        "FloatType",
        "DoubleType",
        "DateType",
        "TimestampType",
        "TimestampNTZType",
        "BinaryType",
        "NullType",
    }
)


@dataclass(frozen=True)
class Suite:
    """One GE expectation suite = one Dagster asset check.

    - ``name``: the check name (letters, digits, underscores), e.g. ``"silver_orders_schema"``.
    - ``expectations``: returns fresh GE expectation objects on each call.
    - ``critical``: a failure is ``AssetCheckSeverity.ERROR`` and the check is ``blocking``
      (downstream assets do not materialize); otherwise ``WARN`` and non-blocking.
    - ``prepare``: derives the frame to validate from the asset's DataFrame (aggregate per key,
      add boolean columns...). The runner caches its result for the validation and releases it.
    - ``mostly_threshold``: a documented tolerance: every expectation that takes ``mostly`` and
      does not set it runs with ``mostly=mostly_threshold`` (e.g. ``0.999``: up to 0.1 % of rows
      may break it). Tolerated violations are still counted in the check metadata.
    - ``example_columns``: columns (e.g. the key) shown for each failing row, so an operator can
      find the rows; they must exist in the validated frame.
    """

    name: str
    description: str
    expectations: Callable[[], list]
    critical: bool = True
    prepare: Callable[[DataFrame], DataFrame] | None = None
    mostly_threshold: float | None = None
    example_columns: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not _CHECK_NAME.match(self.name):
            raise ValueError(
                f"suite name {self.name!r} must match {_CHECK_NAME.pattern} (a Dagster check name)"
            )
        if self.mostly_threshold is not None and not 0.0 < self.mostly_threshold <= 1.0:
            raise ValueError(
                f"mostly_threshold of {self.name} must be in (0, 1], got {self.mostly_threshold}"
            )
        if isinstance(self.example_columns, str):
            object.__setattr__(self, "example_columns", (self.example_columns,))
        else:
            object.__setattr__(self, "example_columns", tuple(self.example_columns))

    @property
    def severity_name(self) -> str:
        return "ERROR" if self.critical else "WARN"


def _columns(cols: str | Iterable[str]) -> list[str]:
    return [cols] if isinstance(cols, str) else list(cols)


# ---------------------------------------------------------------------------------------------
# Schema
# ---------------------------------------------------------------------------------------------


def spark_type_name(data_type) -> str:
    """The name ``ExpectColumnValuesToBeOfType`` accepts on Spark: the type's class name."""
    return type(data_type).__name__


def schema_expectations(schema: StructType, *, exact_columns: bool = True) -> list:
    """Column existence and types of ``schema``; with ``exact_columns`` no other column may exist.

    No Spark job: GE reads all of it from the DataFrame's schema.
    """
    expectations: list = []
    if exact_columns:
        expectations.append(
            gxe.ExpectTableColumnsToMatchSet(column_set=[f.name for f in schema.fields], exact_match=True)
        )
    for field in schema.fields:
        type_name = spark_type_name(field.dataType)
        expectations.append(gxe.ExpectColumnToExist(column=field.name))
        expectations.append(gxe.ExpectColumnValuesToBeOfType(column=field.name, type_=type_name))
        if type_name not in _PLAIN_TYPES:
            expectations.append(
                ExpectColumnValuesToHaveSparkType(column=field.name, type_=field.dataType.simpleString())
            )
    return expectations


def columns_exist(cols: str | Iterable[str]) -> list:
    return [gxe.ExpectColumnToExist(column=c) for c in _columns(cols)]


# ---------------------------------------------------------------------------------------------
# Values
# ---------------------------------------------------------------------------------------------


def not_null(cols: str | Iterable[str]) -> list:
    return [gxe.ExpectColumnValuesToNotBeNull(column=c) for c in _columns(cols)]


def in_set(col: str, values: Iterable[Any]) -> list:
    """Non-null values of ``col`` are in ``values`` (nulls are skipped: add ``not_null``)."""
    return [gxe.ExpectColumnValuesToBeInSet(column=col, value_set=list(values))]


def _bound(value: Any) -> Any:
    if isinstance(value, _dt.datetime) and value.tzinfo is None:
        raise ValueError(
            f"naive datetime bound {value!r}: PySpark would read it in the machine's time zone; "
            "pass an aware datetime or a string with an offset"
        )
    return value


def between(
    col: str,
    min_value: Any = None,
    max_value: Any = None,
    *,
    strict_min: bool = False,
    strict_max: bool = False,
) -> list:
    """``min_value <= col <= max_value`` (``<`` with ``strict_*``); ``None`` = unbounded.

    Nulls are skipped (add ``not_null``). For ``> 0`` use ``between(c, 0, strict_min=True)``.
    """
    if min_value is None and max_value is None:
        raise ValueError("between() needs min_value or max_value")
    return [
        gxe.ExpectColumnValuesToBeBetween(
            column=col,
            min_value=_bound(min_value),
            max_value=_bound(max_value),
            strict_min=strict_min,
            strict_max=strict_max,
        )
    ]


def unique_key(cols: str | Sequence[str], *, include_not_null: bool = True) -> list:
    """``cols`` identify a row: unique (compound for several columns) and, by default, not null.

    Without ``include_not_null``, GE's uniqueness skips nulls: on one column null keys are never
    duplicates; on several columns only rows with *all* key columns null are skipped.
    """
    columns = _columns(cols)
    expectations = not_null(columns) if include_not_null else []
    if len(columns) == 1:
        expectations.append(gxe.ExpectColumnValuesToBeUnique(column=columns[0]))
    else:
        expectations.append(gxe.ExpectCompoundColumnsToBeUnique(column_list=columns))
    return expectations


def column_pair_equal(a: str, b: str) -> list:
    """``a == b`` on every row where at least one of them is set (both null: skipped)."""
    return [
        gxe.ExpectColumnPairValuesToBeEqual(column_A=a, column_B=b, ignore_row_if="both_values_are_missing")
    ]


def row_count_between(min_value: int | None = None, max_value: int | None = None) -> list:
    return [gxe.ExpectTableRowCountToBeBetween(min_value=min_value, max_value=max_value)]


# ---------------------------------------------------------------------------------------------
# Equations: a prepare step adds boolean columns, the expectations say they are always true
# ---------------------------------------------------------------------------------------------


def _condition_column(condition, df: DataFrame) -> Column:
    from pyspark.sql import functions as F

    return F.expr(condition) if isinstance(condition, str) else condition(df)


def add_flags(
    conditions: Mapping[str, str | Callable[[DataFrame], Column]],
    *,
    keep: Sequence[str] | None = None,
    base: Callable[[DataFrame], DataFrame] | None = None,
) -> Callable[[DataFrame], DataFrame]:
    """A ``prepare`` function: one boolean column per condition, null counted as false.

    A condition is a Spark SQL expression (``"order_amount = quantity * unit_price"``) or a
    function of the frame returning a ``Column``; conditions are built lazily, on the frame, so
    suites can be defined at import time without a SparkSession. Write null-tolerant conditions
    with ``<=>`` or ``IS NULL OR ...`` where null is acceptable. ``base`` runs first (e.g. an
    aggregation). ``keep`` narrows the frame to those columns plus the flags (smaller cache);
    ``None`` keeps every column.
    """

    def prepare(df: DataFrame) -> DataFrame:
        from pyspark.sql import functions as F

        frame = base(df) if base is not None else df
        flags = [
            F.coalesce(_condition_column(c, frame), F.lit(False)).alias(n) for n, c in conditions.items()
        ]
        kept = frame.columns if keep is None else list(keep)
        return frame.select(*[F.col(c) for c in kept if c not in conditions], *flags)

    # What the flags are made of, so that suites flagging the same frame can be validated
    # together (see quality.checks.check_results).
    prepare.flag_conditions = dict(conditions)
    prepare.flag_keep = None if keep is None else tuple(keep)
    prepare.flag_base = base
    return prepare


def merge_flag_prepares(prepares: Sequence[Callable]) -> Callable | None:
    """One ``add_flags`` prepare computing every flag of ``prepares`` (all without ``base``), or
    None when they cannot be merged (a flag name used with two different conditions)."""
    conditions: dict = {}
    keep: list[str] | None = []
    for prepare in prepares:
        for name, condition in prepare.flag_conditions.items():
            if name in conditions and conditions[name] is not condition and conditions[name] != condition:
                return None
            conditions[name] = condition
        if prepare.flag_keep is None or keep is None:
            keep = None
        else:
            keep.extend(c for c in prepare.flag_keep if c not in keep)
    return add_flags(conditions, keep=keep)


def always_true(flag_columns: str | Iterable[str], *, allow_null: bool = False) -> list:
    """Boolean columns that must be true on every row (null fails unless ``allow_null``)."""
    expectations: list = []
    for flag in _columns(flag_columns):
        if not allow_null:
            expectations.append(gxe.ExpectColumnValuesToNotBeNull(column=flag))
        expectations.append(gxe.ExpectColumnValuesToBeInSet(column=flag, value_set=[True]))
    return expectations


def equation_suite(
    name: str,
    description: str,
    conditions: Mapping[str, str | Callable[[DataFrame], Column]],
    *,
    example_columns: Sequence[str] = (),
    base: Callable[[DataFrame], DataFrame] | None = None,
    critical: bool = True,
    mostly_threshold: float | None = None,
) -> Suite:
    """A suite of "this equation holds on every row" checks, one boolean flag per condition.

    The flags are named by the keys of ``conditions`` (they are the failing "columns" in the
    check metadata, so name them after the rule: ``"pay_amount_is_order_minus_subsidy"``), and
    failing rows are shown by ``example_columns``::

        equation_suite(
            "silver_orders_amounts",
            "derived amounts of SPEC §2",
            {
                "order_amount_is_qty_x_price": "order_amount = quantity * unit_price",
                "pay_amount_is_amount_minus_subsidy": "pay_amount = order_amount - platform_subsidy",
            },
            example_columns=["order_id"],
        )
    """
    flags = list(conditions)
    keep = list(example_columns)
    return Suite(
        name=name,
        description=description,
        expectations=lambda: always_true(flags, allow_null=True),
        critical=critical,
        prepare=add_flags(conditions, keep=keep, base=base),
        mostly_threshold=mostly_threshold,
        example_columns=tuple(example_columns),
    )
