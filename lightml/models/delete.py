"""LightML 1.2's import path for ``DeleteResult`` (it lives in ``lightml.results``)."""

from lightml.results import DeleteResult

__all__ = ["DeleteResult"]
