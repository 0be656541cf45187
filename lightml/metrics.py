"""LightML 1.2's import path for the ``METRIC_*`` outcomes (they live in ``lightml.results``)."""

from lightml.results import METRIC_INSERTED, METRIC_SKIPPED, METRIC_UPDATED

__all__ = ["METRIC_INSERTED", "METRIC_SKIPPED", "METRIC_UPDATED"]
