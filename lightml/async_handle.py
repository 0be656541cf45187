"""``AsyncLightMLHandle``: the same API as ``LightMLHandle``, as coroutines.

Writes are built (``lightml.write.builders``: input checked) in the calling coroutine,
then batched: the calls that all the coroutines make in one turn of the event loop go to
the writer thread together, share one transaction (group commit), and are woken with one
callback. Reads run in a worker thread so they never block the event loop. Use it as
``async with AsyncLightMLHandle(db, run) as h:`` or call ``await h.open()``; the first
method call opens it too.
"""

from __future__ import annotations

import asyncio
import os
from concurrent.futures import Future
from functools import partial
from typing import Any, Callable, Iterable, Mapping, Sequence, TypeVar

import anyio
import anyio.to_thread

from lightml.runner import Registry
from lightml.write import builders
from lightml.write.builders import Scope
from lightml.defaults import PRUNE_GRACE_SECONDS
from lightml.results import PruneResult
from lightml.errors import HandleClosedError
from lightml.results import DeleteResult
from lightml.log.store import DEFAULT_TIMEOUT

T = TypeVar("T")


def _outcome(done: Future) -> tuple[Any, BaseException | None]:
    exc = done.exception()
    return (None, exc) if exc is not None else (done.result(), None)


def _deliver(batch: list[tuple[Any, asyncio.Future]], outcomes: list | None, exc: BaseException | None) -> None:
    """Resolve each waiting coroutine with its command's result or error (in the loop thread)."""
    for i, (_, waiter) in enumerate(batch):
        if waiter.done():  # cancelled while waiting; its write happened all the same
            continue
        if exc is not None:
            waiter.set_exception(exc)
        else:
            result, error = outcomes[i]
            if error is not None:
                waiter.set_exception(error)
            else:
                waiter.set_result(result)


class AsyncLightMLHandle:
    """``LightMLHandle``'s API as coroutines, with the same arguments (see its docstring):
    ``timeout``, ``synchronous``, ``origin``, ``create``, and ``allow_network_filesystem``
    (write a SQLite registry on a network filesystem anyway: only one machine writes it;
    without it, ``NetworkFilesystemError`` at ``open()``, or with ``create=False`` at the
    first write). The registry is opened by ``open()``, ``async with``, or the first call.
    """

    def __init__(self, db: str | os.PathLike, run_name: str | None = None, *,
                 timeout: float = DEFAULT_TIMEOUT, synchronous: str = "FULL", origin: str = "api",
                 create: bool = True, allow_network_filesystem: bool = False) -> None:
        self._open_args = (db, run_name)
        self._open_kwargs = {"timeout": timeout, "synchronous": synchronous, "origin": origin, "create": create,
                             "allow_network_filesystem": allow_network_filesystem}
        self._core: Registry | None = None
        self._closed = False
        # Write calls of this loop turn, waiting to be sent to the writer as one batch.
        self._pending: list[tuple[Any, asyncio.Future]] = []
        self._open_lock = anyio.Lock()

    async def open(self) -> "AsyncLightMLHandle":
        async with self._open_lock:  # concurrent first calls open one registry, not several
            if self._closed:
                raise HandleClosedError("this LightML handle is closed")
            if self._core is None:
                self._core = await anyio.to_thread.run_sync(
                    partial(Registry, *self._open_args, **self._open_kwargs))
        return self

    async def close(self) -> None:
        async with self._open_lock:
            self._closed = True
            if self._core is not None:
                await anyio.to_thread.run_sync(self._core.close)

    async def __aenter__(self) -> "AsyncLightMLHandle":
        return await self.open()

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    @property
    def run_name(self) -> str | None:
        return self._open_args[1]

    async def _write(self, build: Callable[[Scope], Any]) -> Any:
        core = self._core if self._core is not None else (await self.open())._core
        return await self._queue(core, build(core.scope))  # bad input raises here: nothing is queued

    def _queue(self, core: Registry, command: Any) -> asyncio.Future:
        """Add a validated command to this loop turn's batch; the future resolves after COMMIT."""
        loop = asyncio.get_running_loop()
        waiter = loop.create_future()
        self._pending.append((command, waiter))
        if len(self._pending) == 1:
            loop.call_soon(self._send_batch, core, loop)
        return waiter

    def _send_batch(self, core: Registry, loop: asyncio.AbstractEventLoop) -> None:
        batch, self._pending = self._pending, []
        try:
            future = core.submit_many([command for command, _ in batch])
        except Exception as exc:  # e.g. the handle was closed meanwhile
            _deliver(batch, None, exc)
            return
        future.add_done_callback(
            lambda done: loop.call_soon_threadsafe(_deliver, batch, *_outcome(done)))

    async def _read(self, read: Callable[[Registry], T]) -> T:
        core = self._core if self._core is not None else (await self.open())._core
        return await anyio.to_thread.run_sync(read, core)

    # writes: each returns after COMMIT

    async def register_model(self, model_name: str, path: str | os.PathLike, parent_name: str | None = None,
                             parent_id: int | None = None, run_name: str | None = None, *,
                             params: Mapping[str, Any] | None = None, tags: Iterable[str] | None = None) -> int:
        return await self._write(
            lambda s: builders.register_model(s, model_name, path, parent_name, parent_id, run_name, params, tags))

    async def register_checkpoint(self, model_name: str, step: int, path: str | os.PathLike) -> int:
        return await self._write(lambda s: builders.register_checkpoint(s, model_name, step, path))

    async def log_model_metric(self, model_name: str, family: str, metric_name: str, value: float,
                               scores: Any = None, force: bool = False, *, doc_ids: Any = None,
                               settings: Mapping[str, Any] | None = None, repeat: str | None = None) -> int:
        # The call eval loops make by the thousand: no closure and no extra coroutine.
        core = self._core if self._core is not None else (await self.open())._core
        return await self._queue(core, builders.log_model_metric(core.scope, model_name, family, metric_name, value,
                                                                 scores, force, doc_ids, settings, repeat))

    async def log_checkpoint_metric(self, checkpoint_id: int, family: str, metric_name: str, value: float,
                                    scores: Any = None, force: bool = False, *, doc_ids: Any = None,
                                    settings: Mapping[str, Any] | None = None, repeat: str | None = None) -> int:
        return await self._write(
            lambda s: builders.log_checkpoint_metric(checkpoint_id, family, metric_name, value, scores, force, doc_ids,
                                                     settings, repeat))

    async def log_metrics(self, model_name: str, metrics: Mapping[str, Mapping[str, float]],
                          force: bool = False, *, settings: Mapping[str, Any] | None = None,
                          repeat: str | None = None) -> dict[str, int]:
        return await self._write(lambda s: builders.log_metrics(s, model_name, metrics, force, settings, repeat))

    async def log_metrics_flat(self, model_name: str, metrics: Mapping[str, float], family: str,
                               force: bool = False) -> dict[str, int]:
        return await self._write(lambda s: builders.log_metrics_flat(s, model_name, metrics, family, force))

    async def delete_model(self, model_name: str) -> DeleteResult:
        return await self._write(lambda s: builders.delete_model(s, model_name))

    async def restore_model(self, model_name: str, run_name: str | None = None) -> int:
        return await self._write(lambda s: builders.restore_model(s, model_name, run_name))

    async def set_notes(self, model_name: str, notes: str | None) -> bool:
        return await self._write(lambda s: builders.set_notes(s, model_name, notes))

    async def rename_model(self, old_name: str, new_name: str) -> bool:
        return await self._write(lambda s: builders.rename_model(s, old_name, new_name))

    async def set_hidden(self, model_name: str, hidden: bool = True) -> bool:
        return await self._write(lambda s: builders.set_hidden(s, model_name, hidden))

    async def set_params(self, model_name: str, params: Mapping[str, Any]) -> bool:
        return await self._write(lambda s: builders.set_params(s, model_name, params))

    async def add_tags(self, model_name: str, tags: Iterable[str]) -> bool:
        return await self._write(lambda s: builders.add_tags(s, model_name, tags))

    async def remove_tags(self, model_name: str, tags: Iterable[str]) -> bool:
        return await self._write(lambda s: builders.remove_tags(s, model_name, tags))

    async def save_dashboard_item(self, kind: str, name: str, spec: Mapping[str, Any],
                                  item_id: int | None = None) -> int:
        return (await self._write(lambda s: builders.save_dashboard_item(kind, name, spec, item_id)))[0]

    async def remove_dashboard_item(self, item_id: int) -> bool:
        return await self._write(lambda s: builders.remove_dashboard_item(item_id))

    async def restore_dashboard_item(self, item_id: int) -> bool:
        return await self._write(lambda s: builders.restore_dashboard_item(item_id))

    async def reorder_dashboard_items(self, kind: str, item_ids: Sequence[int]) -> bool:
        return await self._write(lambda s: builders.reorder_dashboard_items(kind, item_ids))

    async def dashboard_items(self, kind: str | None = None, removed: bool = False) -> list[dict[str, Any]]:
        return await self._read(lambda core: core.dashboard_items(kind, removed))

    async def get_params(self, model_name: str) -> dict[str, Any]:
        return await self._read(lambda c: c.get_params(model_name))

    async def get_tags(self, model_name: str) -> list[str]:
        return await self._read(lambda c: c.get_tags(model_name))

    async def select_models(self, where: str) -> list[dict[str, Any]]:
        return await self._read(lambda c: c.select_models(where))

    async def set_parent(self, model_name: str, parent_name: str | None) -> bool:
        return await self._write(lambda s: builders.set_parent(s, model_name, parent_name))

    async def prune(self, dry_run: bool = False, grace_seconds: float = PRUNE_GRACE_SECONDS) -> PruneResult:
        if dry_run:
            return await self._read(lambda c: c.prune_preview(grace_seconds))
        return await self._write(lambda s: builders.prune(s, grace_seconds))

    async def add_schema_rule(self, family: str, metric_name: str) -> bool:
        return await self._write(lambda s: builders.add_schema_rules([(family, metric_name)])) == 1

    async def add_schema_rules(self, rules: Iterable[tuple[str, str]]) -> int:
        rules = list(rules)
        return await self._write(lambda s: builders.add_schema_rules(rules))

    # reads

    async def find_checkpoint(self, model_name: str, step: int, path_hint: str | None = None) -> int | None:
        return await self._read(lambda c: c.find_checkpoint(model_name, step, path_hint))

    async def model_exists(self, model_name: str) -> bool:
        return await self._read(lambda c: c.model_exists(model_name))

    async def metric_exists(self, model_name: str, family: str, metric_name: str) -> bool:
        return await self._read(lambda c: c.metric_exists(model_name, family, metric_name))

    async def run_metric_exists(self, model_name: str, family: str, metric_name: str) -> bool:
        return await self._read(lambda c: c.run_metric_exists(model_name, family, metric_name))

    async def search(self, model: str, family: str | None = None, metric: str | None = None) -> list[dict[str, Any]]:
        return await self._read(lambda c: c.search(model, family, metric))

    async def get_detailed_scores(self, model_name: str, family: str, metric_name: str) -> list | None:
        return await self._read(lambda c: c.get_detailed_scores(model_name, family, metric_name))

    async def compare_stats(self, model_a: str, model_b: str, family: str, metric_name: str, *,
                            resamples: int = 10_000, confidence: float = 0.95, seed: int = 42,
                            strict: bool = False) -> dict[str, Any]:
        return await self._read(lambda c: c.compare_stats(
            model_a, model_b, family, metric_name, resamples=resamples, confidence=confidence, seed=seed,
            strict=strict))

    async def compare_stats_all(self, model_a: str, model_b: str, family: str | None = None, *,
                                resamples: int = 10_000, confidence: float = 0.95,
                                seed: int = 42, strict: bool = False) -> list[dict[str, Any]]:
        return await self._read(lambda c: c.compare_stats_all(
            model_a, model_b, family, resamples=resamples, confidence=confidence, seed=seed, strict=strict))

    async def flips(self, model_a: str, model_b: str, family: str, metric_name: str,
                    step_a: int | None = None, step_b: int | None = None, *,
                    limit: int | None = None) -> list[dict[str, Any]]:
        return await self._read(lambda c: c.flips(model_a, model_b, family, metric_name, step_a, step_b, limit))

    async def check_regression(self, base: str, candidate: str, family: str | None = None, *,
                               alpha: float = 0.05) -> dict[str, Any]:
        return await self._read(lambda c: c.check_regression(base, candidate, family, alpha))

    async def model_history(self, model_name: str) -> list[dict[str, Any]]:
        return await self._read(lambda c: c.model_history(model_name))

    async def metric_settings(self, model_name: str, family: str, metric_name: str,
                              step: int | None = None) -> dict[str, Any]:
        return await self._read(lambda c: c.metric_settings(model_name, family, metric_name, step))

    async def get_repeats(self, model_name: str, family: str, metric_name: str,
                          step: int | None = None) -> list[dict[str, Any]]:
        return await self._read(lambda c: c.get_repeats(model_name, family, metric_name, step))

    async def metric_history(self, model_name: str, family: str, metric_name: str,
                             step: int | None = None) -> list[dict[str, Any]]:
        return await self._read(lambda c: c.metric_history(model_name, family, metric_name, step))
