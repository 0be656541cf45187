"""The result of deleting a model."""

from dataclasses import dataclass


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
