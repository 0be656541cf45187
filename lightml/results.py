"""What write calls return: the outcome of logging one metric, and what a delete removed.

Outcome of logging one metric (the deduplication table):

| metric exists | force | outcome          | events appended                       |
|---------------|-------|------------------|---------------------------------------|
| no            | any   | METRIC_INSERTED  | metric_inserted                       |
| yes           | False | METRIC_SKIPPED   | none                                  |
| yes           | True  | METRIC_UPDATED   | metric_overwritten (old value kept)   |
"""

from dataclasses import dataclass

# The values LightML 1.2 used, so existing scripts comparing with 0/1/2 keep working.
METRIC_SKIPPED = 0
METRIC_INSERTED = 1
METRIC_UPDATED = 2

OUTCOME_NAMES = {METRIC_SKIPPED: "skipped", METRIC_INSERTED: "inserted", METRIC_UPDATED: "updated"}


@dataclass(frozen=True)
class DeleteResult:
    """What ``delete_model`` removed from the read tables (the log keeps all of it)."""

    model_name: str
    checkpoints_deleted: int
    metrics_deleted: int
    seq: int  # position of the model_deleted event: what ``restore_model`` undoes

    def __str__(self) -> str:
        return (
            f"Deleted model {self.model_name!r}: {self.checkpoints_deleted} checkpoint(s), "
            f"{self.metrics_deleted} metric(s) (event #{self.seq}; undo: restore_model, or lightml restore)"
        )


__all__ = ["DeleteResult", "METRIC_INSERTED", "METRIC_SKIPPED", "METRIC_UPDATED"]
