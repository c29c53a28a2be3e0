"""Great Expectations Data Docs (static HTML) from the validation results onetrack keeps.

Every asset check writes its GE validation result to
``<warehouse>/quality/validations/<suite>/<dt>.json`` (:func:`quality.runner.record_validation`;
one file per suite and partition, replaced on re-run, so each file is the latest result of its
partition). :func:`build_data_docs` loads them into an in-memory GE context whose only Data Docs
site is ``<warehouse>/quality/data_docs/``, adds each suite (rebuilt from the expectation
configurations of its newest result) and lets GE's own ``SiteBuilder`` render the index, one
page per validation result and one per suite::

    .venv/bin/onetrack docs            # prints .../quality/data_docs/index.html
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")

import great_expectations as gx  # noqa: E402
from great_expectations.core.expectation_validation_result import (  # noqa: E402
    ExpectationSuiteValidationResultSchema,
)
from great_expectations.core.run_identifier import RunIdentifier  # noqa: E402
from great_expectations.data_context.types.resource_identifiers import (  # noqa: E402
    ExpectationSuiteIdentifier,
    ValidationResultIdentifier,
)

from quality.runner import validations_dir  # noqa: E402

SITE_NAME = "onetrack"


def data_docs_dir(warehouse_dir: str) -> str:
    """Where the site is built: ``<warehouse>/quality/data_docs``."""
    return f"{warehouse_dir.rstrip('/')}/quality/data_docs"


@dataclass
class DataDocsSite:
    index: Path
    suites: int
    validations: int
    failed: list[str]
    """``<suite>/<dt>`` of every rendered validation result that did not pass."""


def _local(path: str) -> Path:
    if "://" in path:
        if not path.startswith("file://"):
            raise NotImplementedError(f"Data Docs are built from local paths only, got {path}")
        path = path[len("file://") :]
    return Path(path)


def _context(site_dir: Path):
    from great_expectations.data_context.types.base import (
        DataContextConfig,
        InMemoryStoreBackendDefaults,
        ProgressBarsConfig,
    )

    config = DataContextConfig(
        store_backend_defaults=InMemoryStoreBackendDefaults(init_temp_docs_sites=False),
        analytics_enabled=False,
        progress_bars=ProgressBarsConfig(globally=False, metric_calculations=False),
        data_docs_sites={
            SITE_NAME: {
                "class_name": "SiteBuilder",
                "show_how_to_buttons": False,
                "store_backend": {
                    "class_name": "TupleFilesystemStoreBackend",
                    "base_directory": str(site_dir),
                },
                "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
            }
        },
    )
    return gx.get_context(mode="ephemeral", project_config=config)


def _suite_from_result(result) -> gx.ExpectationSuite:
    """The suite a result was validated against, from its expectation configurations."""
    expectations = [r.expectation_config.to_domain_obj() for r in result.results]
    for expectation in expectations:
        expectation.id = None  # ids of the validation run; a new suite assigns its own
    meta = {k: v for k, v in (result.meta.get("onetrack") or {}).items() if k in ("description", "critical")}
    return gx.ExpectationSuite(name=result.suite_name, expectations=expectations, meta=meta)


def build_data_docs(
    warehouse_dir: str,
    *,
    partitions: list[str] | None = None,
    out_dir: str | None = None,
) -> DataDocsSite:
    """Render Data Docs for the recorded validation results (of ``partitions`` only, if given).

    The site directory is rebuilt from scratch, so results deleted or replaced since the last
    build do not linger. Raises ``FileNotFoundError`` when there is no result to render.
    """
    root = _local(validations_dir(warehouse_dir))
    site_dir = _local(out_dir or data_docs_dir(warehouse_dir))
    wanted = set(partitions) if partitions else None
    files = sorted(
        p
        for p in root.glob("*/*.json")
        if not p.name.startswith(".") and (wanted is None or p.stem in wanted)
    )
    if not files:
        only = f" for {sorted(wanted)}" if wanted else ""
        raise FileNotFoundError(f"no validation results under {root}{only}")

    schema = ExpectationSuiteValidationResultSchema()
    loaded = []  # (validation time, partition, result)
    for path in files:
        result = schema.load(json.loads(path.read_text()))
        run_id = result.meta.get("run_id")
        if isinstance(run_id, dict):
            run_id = RunIdentifier(**run_id)
        elif not isinstance(run_id, RunIdentifier):
            run_id = RunIdentifier(run_name=path.stem)
        result.meta["run_id"] = run_id
        loaded.append((str(run_id.run_time), path.stem, result))

    if site_dir.exists():
        shutil.rmtree(site_dir)
    site_dir.mkdir(parents=True)
    context = _context(site_dir)

    newest: dict[str, object] = {}
    failed: list[str] = []
    for _, partition, result in sorted(loaded, key=lambda item: item[0]):
        newest[result.suite_name] = result
        identifier = ValidationResultIdentifier(
            expectation_suite_identifier=ExpectationSuiteIdentifier(name=result.suite_name),
            run_id=result.meta["run_id"],
            batch_identifier=partition,
        )
        context.validation_results_store.set(identifier, result)
        if not result.success:
            failed.append(f"{result.suite_name}/{partition}")
    for result in newest.values():
        context.suites.add(_suite_from_result(result))

    urls = context.build_data_docs(site_names=[SITE_NAME])
    index = site_dir / "index.html"
    if not index.is_file():
        raise RuntimeError(f"GE did not write {index} (site urls: {urls})")
    return DataDocsSite(index=index, suites=len(newest), validations=len(loaded), failed=sorted(failed))
