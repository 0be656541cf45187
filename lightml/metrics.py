"""Outcome of logging one metric (the deduplication table).

| metric exists | force | outcome          | events appended                       |
|---------------|-------|------------------|---------------------------------------|
| no            | any   | METRIC_INSERTED  | metric_inserted                       |
| yes           | False | METRIC_SKIPPED   | none                                  |
| yes           | True  | METRIC_UPDATED   | metric_overwritten (old value kept)   |
"""

# The values LightML 1.2 used, so existing scripts comparing with 0/1/2 keep working.
METRIC_SKIPPED = 0
METRIC_INSERTED = 1
METRIC_UPDATED = 2

OUTCOME_NAMES = {METRIC_SKIPPED: "skipped", METRIC_INSERTED: "inserted", METRIC_UPDATED: "updated"}

__all__ = ["METRIC_INSERTED", "METRIC_SKIPPED", "METRIC_UPDATED"]
