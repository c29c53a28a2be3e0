"""Great Expectations suites guarding the ingestion assets, generated from the source contracts."""

from __future__ import annotations

import os

from pyspark.sql import functions as F
from pyspark.sql import types as T

from assets.ingest.bronze import BRONZE_SCHEMA
from assets.ingest.contracts import SourceContract
from assets.ingest.validate import SPARK_TYPES
from quality.suites import Suite, equation_suite, in_set, not_null, schema_expectations, unique_key

# A landing partition whose quarantine share exceeds this breaks its contract: the critical check
# fails and blocks everything downstream of the source in that run.
QUARANTINE_MAX_RATE = float(os.environ.get("ONETRACK_QUARANTINE_MAX_RATE", "0.10"))
# Small partitions (a few returns on a quiet day) may quarantine up to this many records before
# the rate applies, so that two bad lines out of ten do not stop the day.
QUARANTINE_ALLOWANCE = int(os.environ.get("ONETRACK_QUARANTINE_ALLOWANCE", "25"))

_SPARK = {
    "string": T.StringType(),
    "int": T.IntegerType(),
    "long": T.LongType(),
    "decimal": T.DecimalType(18, 2),
    "timestamp": T.TimestampType(),
    "date": T.DateType(),
}
assert set(_SPARK) == set(SPARK_TYPES)


def silver_schema(contract: SourceContract) -> T.StructType:
    fields = [T.StructField(f.name, _SPARK[f.kind]) for f in contract.fields]
    fields += [T.StructField(name, T.DecimalType(18, 2)) for name in contract.derived]
    fields += [
        T.StructField("dt", T.DateType()),
        T.StructField("source_file", T.StringType()),
        T.StructField("line_number", T.LongType()),
        T.StructField("record_hash", T.StringType()),
    ]
    return T.StructType(fields)


QUARANTINE_SCHEMA = T.StructType(
    [
        T.StructField("dt", T.DateType()),
        T.StructField("source_file", T.StringType()),
        T.StructField("line_number", T.LongType()),
        T.StructField("rule", T.StringType()),
        T.StructField("violations", T.ArrayType(T.StringType(), False)),
        T.StructField("raw", T.StringType()),
    ]
)


def bronze_suites(contract: SourceContract) -> list[Suite]:
    name = contract.name
    return [
        Suite(
            name=f"bronze_{name}_schema",
            description="Bronze rows keep the landed record with its file and line.",
            expectations=lambda: schema_expectations(BRONZE_SCHEMA)
            + not_null(["dt", "source_file", "line_number"])
            + unique_key(["source_file", "line_number"]),
            example_columns=("source_file", "line_number"),
        )
    ]


def _range_conditions(contract: SourceContract) -> dict:
    conditions = {}
    for f in contract.fields:
        if f.check is not None:
            conditions[f"{f.name}_in_range"] = lambda df, f=f: F.col(f.name).isNull() | f.check(F.col(f.name))
    for rule in contract.consistency:
        conditions[rule.rule.replace(":", "_")] = lambda df, rule=rule: rule.holds()
    return conditions


def silver_suites(contract: SourceContract) -> list[Suite]:
    name = contract.name
    key_cols = list(contract.duplicate_columns)

    def values():
        out = schema_expectations(silver_schema(contract))
        out += not_null([f.name for f in contract.fields if f.required] + ["dt", "source_file", "line_number"])
        for f in contract.fields:
            if f.enum:
                out += in_set(f.name, list(f.enum))
        out += unique_key(key_cols)
        return out

    suites = [
        Suite(
            name=f"silver_{name}_contract",
            description=(
                "Typed, validated records: schema, required keys not null, enums, and no exact "
                f"duplicate ({', '.join(key_cols)} unique)."
            ),
            expectations=values,
            example_columns=(*contract.key, "source_file", "line_number"),
        ),
        equation_suite(
            f"silver_{name}_ranges",
            "Numeric bounds and cross-field rules of SPEC §2 hold on every accepted record.",
            _range_conditions(contract),
            example_columns=[*contract.key, "source_file", "line_number"],
        ),
    ]
    if contract.derived:
        suites.append(
            equation_suite(
                f"silver_{name}_amounts",
                "order_amount = quantity x unit_price; pay_amount = order_amount - platform_subsidy.",
                {
                    "order_amount_is_qty_x_price": "order_amount = quantity * unit_price",
                    "pay_amount_is_amount_minus_subsidy": "pay_amount = order_amount - platform_subsidy",
                },
                example_columns=["order_id"],
            )
        )
    return suites


def audit_suites(contract: SourceContract) -> list[Suite]:
    name = contract.name
    return [
        equation_suite(
            f"{name}_conservation",
            "SPEC §3: records read = accepted + quarantined + duplicates; files read = accepted + quarantined.",
            {
                "records_balance": "records_read = records_accepted + records_quarantined + records_duplicate",
                "files_balance": "files_read = files_accepted + files_quarantined",
            },
            example_columns=["dt", "source"],
        ),
        equation_suite(
            f"{name}_quarantine_rate",
            f"The share of quarantined records of a landing partition is at most {QUARANTINE_MAX_RATE:.0%} "
            f"(config ONETRACK_QUARANTINE_MAX_RATE), or at most {QUARANTINE_ALLOWANCE} records "
            "(ONETRACK_QUARANTINE_ALLOWANCE) on small partitions; beyond it the partition breaks its "
            "contract and nothing downstream of it runs.",
            {
                "quarantine_rate_within_threshold": (
                    f"records_quarantined <= greatest({QUARANTINE_MAX_RATE} * records_read, {QUARANTINE_ALLOWANCE})"
                )
            },
            example_columns=["dt", "source"],
        ),
    ]


def quarantine_suites(contract: SourceContract) -> list[Suite]:
    return [
        Suite(
            name=f"quarantine_{contract.name}_rows",
            description="Every quarantined record keeps its file, the rule it broke and its raw content.",
            expectations=lambda: schema_expectations(QUARANTINE_SCHEMA) + not_null(["dt", "source_file", "rule"]),
            example_columns=("source_file", "line_number"),
        )
    ]

