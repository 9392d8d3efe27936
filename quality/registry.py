"""Which monitors judge a video: one per `MonitorLimits` section of the quality settings.

Why found by name: the settings section is the one place a monitor is declared (with its thresholds,
validated when the YAML is loaded); its implementation is the module of the same name in quality/,
which exposes `MONITOR`. Adding a monitor is that module, its section, and its defaults in
config/quality.yaml (README, "Adding a monitor").
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass

from config.settings import MonitorLimits, QualitySettings
from quality.errors import QualityError
from quality.monitor import Monitor


@dataclass(frozen=True)
class Judged:
    """A monitor with the thresholds it is judged by."""

    monitor: Monitor
    limits: MonitorLimits


def monitor_named(name: str) -> Monitor:
    try:
        module = importlib.import_module(f"quality.{name}")
    except ModuleNotFoundError as exc:
        if exc.name != f"quality.{name}":
            raise
        raise QualityError(f"quality.{name}: no monitor module quality/{name}.py for this settings section") from exc
    monitor = getattr(module, "MONITOR", None)
    if monitor is None or monitor.name != name:
        raise QualityError(f"quality/{name}.py must expose MONITOR, a monitor named '{name}'")
    return monitor


def monitors(limits: QualitySettings) -> list[Judged]:
    """Every configured monitor, in the order its section is declared."""
    return [Judged(monitor_named(name), section) for name, section in limits.monitor_sections().items()]
