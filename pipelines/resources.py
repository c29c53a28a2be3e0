"""Resources carry the environment: the SparkSession and every setting of SPEC marked (config)."""

from __future__ import annotations

import threading

from dagster import ConfigurableResource, EnvVar
from pydantic import PrivateAttr

from pipelines.config import OnetrackConfig
from pipelines.spark import build_spark_session, parse_conf

_SESSION_LOCK = threading.Lock()


class SparkResource(ConfigurableResource):
    """One SparkSession per process, built lazily on first use and never stopped between assets.

    ``master`` and ``conf`` come from ``ONETRACK_SPARK_MASTER`` / ``ONETRACK_SPARK_CONF`` when not
    set in the Dagster config, so the same assets run on ``local[*]`` or a cluster.
    """

    master: str | None = None
    conf: str | None = None
    driver_memory: str | None = None

    _session = PrivateAttr(default=None)

    def get_session(self):
        if self._session is None:
            with _SESSION_LOCK:
                if self._session is None:
                    self._session = build_spark_session(
                        master=self.master,
                        conf=parse_conf(self.conf),
                        driver_memory=self.driver_memory,
                    )
        return self._session


class OnetrackSettings(ConfigurableResource):
    """The three roots and the windows of SPEC; defaults come from the ``ONETRACK_*`` variables."""

    landing_dir: str | None = None
    warehouse_dir: str | None = None
    settlement_dir: str | None = None

    def get_config(self) -> OnetrackConfig:
        base = OnetrackConfig.from_env()
        overrides = {
            key: value
            for key, value in {
                "landing_dir": self.landing_dir,
                "warehouse_dir": self.warehouse_dir,
                "settlement_dir": self.settlement_dir,
            }.items()
            if value
        }
        if not overrides:
            return base
        from dataclasses import replace

        return replace(base, **overrides)


def default_resources() -> dict:
    return {"spark": SparkResource(), "settings": OnetrackSettings()}


__all__ = ["SparkResource", "OnetrackSettings", "default_resources", "EnvVar"]
