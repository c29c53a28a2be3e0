"""Data quality: Great Expectations 1.x suites as code, run as Dagster asset checks.

- :mod:`quality.suites` — ``Suite`` and the builders (schema, not_null, in_set, between,
  unique_key, column_pair_equal, equations).
- :mod:`quality.runner` — ``validate(df, suite) -> SuiteOutcome``; ``record_validation``.
- :mod:`quality.checks` — ``check_specs`` / ``check_results`` for ``@asset(check_specs=...)``.
"""

import os

# Before great_expectations is first imported: no usage analytics from pipeline runs.
os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
