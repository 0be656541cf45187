"""``<registry dir>/models/<name>`` symlinks to local model folders, for browsing the registry.

Links are a convenience made after the event is committed: failing to make one only warns.
"""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path

_UNSAFE = re.compile(r"[^\w.+=@,-]")  # keep letters (unicode too), digits and a few safe marks
_MAX_NAME = 120


def link_name(model_name: str) -> str:
    """A file-system-safe name: '/' -> '__' (as lm-eval does), other unsafe characters -> '_'."""
    safe = _UNSAFE.sub("_", model_name.replace("/", "__")).lstrip(".") or "model"
    if len(safe) > _MAX_NAME or safe != model_name.replace("/", "__"):
        # Two different names must not map to one link: add a short hash of the real name.
        digest = hashlib.sha1(model_name.encode()).hexdigest()[:8]
        safe = f"{safe[:_MAX_NAME]}-{digest}"
    return safe


def _candidates(models_dir: Path, model_name: str, model_id: int) -> list[Path]:
    base = link_name(model_name)
    return [models_dir / base, models_dir / f"{base}--{model_id}"]


def create(registry_dir: Path | None, model_name: str, model_id: int, target: str) -> Path | None:
    """Link to ``target`` if it is a local path that exists; a taken name gets the model id appended.
    A registry with no folder of its own (a PostgreSQL database: ``registry_dir`` None) has no links."""
    if registry_dir is None or not os.path.exists(target):
        return None
    models_dir = registry_dir / "models"
    models_dir.mkdir(exist_ok=True)
    for link in _candidates(models_dir, model_name, model_id):
        if link.is_symlink() and os.readlink(link) == target:
            return link
        if not link.exists() and not link.is_symlink():
            link.symlink_to(target)
            return link
    return None


def remove(registry_dir: Path | None, model_name: str, model_id: int, target: str | None) -> None:
    """Remove the model's link, only if it still points where the model did."""
    if target is None or registry_dir is None:
        return
    for link in _candidates(registry_dir / "models", model_name, model_id):
        if link.is_symlink() and os.readlink(link) == target:
            link.unlink()
            return
