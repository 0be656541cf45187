"""LightML: a local-first registry for LLM evaluation results, on an event-sourced SQLite store.

Imports are lazy so that ``import lightml`` (and ``lightml --help``) stay fast.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "2.0.0"

_EXPORTS = {
    "LightMLHandle": "lightml.handle",
    "AsyncLightMLHandle": "lightml.async_handle",
    "init_registry": "lightml.registry",
    "DeleteResult": "lightml.results",
    "METRIC_INSERTED": "lightml.results",
    "METRIC_SKIPPED": "lightml.results",
    "METRIC_UPDATED": "lightml.results",
    "LightMLError": "lightml.errors",
    "RegistryLockedError": "lightml.errors",
    "NotARegistryError": "lightml.errors",
    "NetworkFilesystemError": "lightml.errors",
    "RegistryUnavailableError": "lightml.errors",
    "replay": "lightml.log.replay",
    "verify": "lightml.log.replay",
    "backup": "lightml.log.backup",
    "migrate": "lightml.ingest.migrate",
    "compare_models": "lightml.read.compare",
    "CompareResult": "lightml.read.compare",
    "diff_models": "lightml.read.diff",
    "format_diff": "lightml.read.diff",
    "export_excel": "lightml.report.export",
    "merge": "lightml.ingest.merge",
    "scan_and_import": "lightml.ingest.scan",
    "ScanStats": "lightml.ingest.scan",
}

__all__ = sorted(_EXPORTS) + ["__version__"]

if TYPE_CHECKING:  # pragma: no cover
    from lightml.async_handle import AsyncLightMLHandle
    from lightml.handle import LightMLHandle
    from lightml.registry import init_registry


def __getattr__(name: str) -> Any:
    module_name = _EXPORTS.get(name)
    if module_name is None:
        raise AttributeError(f"module 'lightml' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module_name), name)
    globals()[name] = value
    return value
