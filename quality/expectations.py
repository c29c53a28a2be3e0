"""The one custom Great Expectations expectation onetrack needs: an exact Spark column type.

GE's ``ExpectColumnValuesToBeOfType`` on Spark takes a ``pyspark.sql.types`` class name
(``"DecimalType"``) and checks ``isinstance``: it cannot tell ``DECIMAL(18,2)`` from
``DECIMAL(38,6)``, which is exactly the drift a money column must not have (SPEC §1). This
subclass compares the Spark SQL type string instead (``DataType.simpleString()``, as
``DataFrame.dtypes`` shows it: ``"decimal(18,2)"``, ``"array<string>"``). It needs no Spark job:
the type comes from the schema.

Importing this module registers the expectation with GE (GE registers every ``Expectation``
subclass by its snake-case name), so serialized suites that use it load again.
"""

from __future__ import annotations

import great_expectations.expectations as gxe


class ExpectColumnValuesToHaveSparkType(gxe.ExpectColumnValuesToBeOfType):
    """Expect a column's Spark type to be exactly ``type_``, e.g. ``"decimal(18,2)"``.

    ``type_`` is a Spark SQL type string as ``DataFrame.dtypes`` prints it. On engines other than
    Spark it behaves like ``ExpectColumnValuesToBeOfType``.
    """

    def _validate_spark(self, actual_column_type, expected_type):
        observed = actual_column_type.simpleString()
        success = expected_type is None or observed == str(expected_type).replace(" ", "").lower()
        return {"success": success, "result": {"observed_value": observed}}
