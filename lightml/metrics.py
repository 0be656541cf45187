"""Outcome of logging one metric (the deduplication table).

| metric exists | force | outcome          | events appended                       |
|---------------|-------|------------------|---------------------------------------|
| no            | any   | METRIC_INSERTED  | metric_inserted                       |
| yes           | False | METRIC_SKIPPED   | none                                  |
| yes           | True  | METRIC_UPDATED   | metric_overwritten (old value kept)   |
"""

METRIC_INSERTED = "inserted"
METRIC_SKIPPED = "skipped"
METRIC_UPDATED = "updated"

__all__ = ["METRIC_INSERTED", "METRIC_SKIPPED", "METRIC_UPDATED"]
