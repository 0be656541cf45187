"""What write calls return: the outcome of logging one metric, and what a delete or a prune removed.

Outcome of logging one metric (the deduplication table):

| metric exists | force | outcome          | events appended                       |
|---------------|-------|------------------|---------------------------------------|
| no            | any   | METRIC_INSERTED  | metric_inserted                       |
| yes           | False | METRIC_SKIPPED   | none                                  |
| yes           | True  | METRIC_UPDATED   | metric_overwritten (old value kept)   |
"""

from dataclasses import dataclass, field

from lightml.defaults import PRUNE_GRACE_SECONDS

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


@dataclass
class PruneResult:
    """What prune removed (or, with ``dry_run``, would remove), and the models it kept only
    because they were registered (or restored) less than ``grace_seconds`` ago."""

    models: list[tuple[str, str | None]] = field(default_factory=list)  # (model, run)
    runs: list[str] = field(default_factory=list)
    dry_run: bool = False
    too_new: list[tuple[str, str | None]] = field(default_factory=list)  # (model, run)
    grace_seconds: float = PRUNE_GRACE_SECONDS

    def to_dict(self) -> dict:
        return {"models": [{"model": m, "run": r} for m, r in self.models], "runs": self.runs,
                "dry_run": self.dry_run, "kept_too_new": [{"model": m, "run": r} for m, r in self.too_new],
                "grace_seconds": self.grace_seconds}


__all__ = ["DeleteResult", "PruneResult", "METRIC_INSERTED", "METRIC_SKIPPED", "METRIC_UPDATED"]
