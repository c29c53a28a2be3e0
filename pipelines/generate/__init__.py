"""Deterministic sample-data generator: writes a SPEC section 2 landing zone.

``generate_landing(landing_dir, start, end, *, orders_per_day=1000, seed=7, faults=False)``
writes, for every business day ``D`` in ``start..end``::

    <landing>/orders/dt=D/part-0001.jsonl ...      JSON Lines, UTF-8, "\\n" (faults: some .jsonl.gz)
    <landing>/returns/dt=D/part-0001.jsonl ...     JSON Lines (one day with faults: a .jsonl.gz part)
    <landing>/ad_spend/dt=D/part-0001.csv ...      CSV, header row, UTF-8, "\\n", no quoting needed
    <landing>/traffic/dt=D/part-0001.parquet ...   Parquet (zstd); event_time timestamp[us, UTC],
                                                   shown_price decimal128(18, 2)
    <landing>/_generator/faults.json               every injected fault (see ``faults.py``)
    <landing>/_generator/summary.json              records and files per source and dt, cohort figures

Files are numbered ``part-NNNN`` from 0001 within each folder, 2-3 per source and day (more at large
volumes: at most 1,000,000 lines per JSONL/CSV file, 2,500,000 rows per Parquet file). A folder
with nothing to land (e.g. returns on the first day) is not created. Same arguments -> the same
bytes. Existing ``part-*`` files in the dt folders of the range are replaced.

Conventions the ingestion side sees:
- JSON timestamps are ISO-8601 with an offset: mostly ``+08:00``; about 12% of records write theirs
  in UTC, as ``Z`` or ``+00:00`` (so the UTC date can differ from the business date); about 3% of
  order ``updated_at`` values carry milliseconds (``.123``). ``paid_at`` is whole seconds.
- Money is a JSON string with exactly 2 decimals (``"59.90"``), CSV ``spend`` likewise.
- ``quantity`` is a JSON integer; ``voucher_pool``, ``paid_at``, ``refunded_at`` may be JSON null.
- Records land in the dt of their business day (a status change lands on the day of its
  ``updated_at``); events of earlier days land in ``dt=start`` when they precede the range.
- faults.json ``line``: 1-based line in the file (CSV: header excluded; Parquet: row index + 1;
  null for whole-file faults); ``file`` is relative to the landing root.
"""

from .landing import GenerationSummary, generate_landing

__all__ = ["GenerationSummary", "generate_landing"]
