"""The dashboard's Starlette app: the page, its static files and the JSON API.

Reads go through aiosqlite read-only connections (``lightml.web.data``); the compare,
history and Excel endpoints reuse the library's synchronous functions in a worker thread,
on their own read-only connection. The two edit endpoints (notes, hide) write through a
handle and need the per-process token that only the served page knows: no CORS headers are
sent, so another origin can neither read the page to learn it nor send the custom header.
"""

from __future__ import annotations

import html
import secrets
import sqlite3
import tempfile
from functools import partial
from importlib import resources
from pathlib import Path
from typing import Any, Callable

import anyio.to_thread
from starlette.applications import Starlette
from starlette.background import BackgroundTask
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from lightml import store
from lightml.errors import LightMLError, NotFoundError, RegistryLockedError
from lightml.web import data

TOKEN_HEADER = "X-LightML-Token"
STATIC = {"app.js": "text/javascript; charset=utf-8", "app.css": "text/css; charset=utf-8"}


class BadRequest(Exception):
    """A malformed or missing parameter: answered with 400."""


def _param(request: Request, name: str, required: bool = True) -> str | None:
    value = request.query_params.get(name)
    if value is None or value == "":
        if required:
            raise BadRequest(f"missing parameter {name!r}")
        return None
    return value


def _int_param(request: Request, name: str, default: int) -> int:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise BadRequest(f"parameter {name!r} must be an integer, got {raw!r}") from None
    if value < 0:
        raise BadRequest(f"parameter {name!r} must not be negative")
    return value


def create_app(db_path: str | Path) -> Starlette:
    db = str(Path(db_path).resolve())
    store.open_registry_readonly(db).close()  # fail now, with a clear error, if it is not a registry
    token = secrets.token_urlsafe(32)

    async def with_conn(work: Callable) -> Any:
        conn = await data.connect(db)
        try:
            return await work(conn)
        finally:
            await conn.close()

    def in_thread(work: Callable[[sqlite3.Connection], Any]) -> Any:
        def run() -> Any:
            conn = store.open_registry_readonly(db)
            try:
                return work(conn)
            finally:
                conn.close()
        return anyio.to_thread.run_sync(run)

    async def page(request: Request) -> HTMLResponse:
        text = resources.files("lightml.web.static").joinpath("index.html").read_text(encoding="utf-8")
        text = text.replace("{{TOKEN}}", token).replace("{{DB}}", html.escape(db))
        return HTMLResponse(text, headers={"Cache-Control": "no-store"})

    async def static(request: Request) -> Response:
        name = request.path_params["name"]
        if name not in STATIC:
            raise HTTPException(404, "no such file")
        body = resources.files("lightml.web.static").joinpath(name).read_bytes()
        return Response(body, media_type=STATIC[name])

    async def api_runs(request: Request) -> JSONResponse:
        return JSONResponse(await with_conn(data.runs))

    async def api_families(request: Request) -> JSONResponse:
        return JSONResponse(await with_conn(data.families))

    # The registry changes only through events: a pivot computed at log position N is the
    # answer until the log moves past N. (key) -> (N, encoded JSON).
    pivot_cache: dict[tuple, tuple[int, bytes]] = {}

    async def api_pivot(request: Request) -> Response:
        family = _param(request, "family", required=False)
        run = _param(request, "run", required=False)
        checkpoints = request.query_params.get("checkpoints", "0") in ("1", "true", "yes")
        key = (family, run, checkpoints)

        async def work(conn) -> bytes:
            (last,) = (await data.rows(conn, "SELECT coalesce(max(seq), 0) FROM events"))[0]
            cached = pivot_cache.get(key)
            if cached is not None and cached[0] == last:
                return cached[1]
            if family is not None and not await data.rows(conn, "SELECT 1 FROM metrics WHERE family = ? LIMIT 1",
                                                          (family,)):
                raise NotFoundError(f"no family {family!r}")
            if run is not None and not await data.rows(conn, "SELECT 1 FROM run WHERE run_name = ?", (run,)):
                raise NotFoundError(f"run {run!r} not found")
            body = await data.pivot(conn, family, run, checkpoints)
            if len(pivot_cache) > 64:
                pivot_cache.clear()
            pivot_cache[key] = (last, body)
            return body
        return Response(await with_conn(work), media_type="application/json")

    async def api_lineage(request: Request) -> JSONResponse:
        return JSONResponse(await with_conn(data.lineage))

    async def api_curves(request: Request) -> JSONResponse:
        family, metric = _param(request, "family"), _param(request, "metric")
        return JSONResponse(await with_conn(lambda conn: data.curves(conn, family, metric)))

    async def api_compare(request: Request) -> JSONResponse:
        from lightml.compare import compare_in

        a, b = _param(request, "a"), _param(request, "b")
        run_a, run_b = _param(request, "run_a", False), _param(request, "run_b", False)
        result = await in_thread(lambda conn: compare_in(conn, a, b, run_a=run_a, run_b=run_b))
        return JSONResponse(result.to_dict())

    async def api_history(request: Request) -> JSONResponse:
        from lightml import queries, resolve

        model, family, metric = _param(request, "model"), _param(request, "family"), _param(request, "metric")
        run_name = _param(request, "run", required=False)
        step = request.query_params.get("step")
        step_value = _int_param(request, "step", 0) if step not in (None, "") else None

        def work(conn):
            run = None
            if run_name is not None:
                run = resolve.run_id(conn, run_name)
                if run is None:
                    raise NotFoundError(f"run {run_name!r} not found")
            ids = queries.history_metric_ids(conn, model, family, metric, step_value, run, run_name)
            return queries.metric_history(conn, ids)
        return JSONResponse(await in_thread(work))

    async def api_events(request: Request) -> JSONResponse:
        after = _int_param(request, "after", 0)
        return JSONResponse(await with_conn(lambda conn: data.events_after(conn, after)))

    async def api_export(request: Request) -> FileResponse:
        from lightml.export import export_excel

        folder = tempfile.mkdtemp(prefix="lightml-export-")
        path = Path(folder) / f"{Path(db).stem}_report.xlsx"
        await anyio.to_thread.run_sync(partial(export_excel, db, path))
        cleanup = BackgroundTask(_remove_tree, folder)
        return FileResponse(path, filename=path.name, background=cleanup,
                            media_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")

    async def edit(request: Request, apply: Callable[[Any, dict], Any]) -> JSONResponse:
        if not secrets.compare_digest(request.headers.get(TOKEN_HEADER, ""), token):
            return JSONResponse({"error": "missing or wrong token: edits come from the dashboard page only"},
                                status_code=403)
        try:
            body = await request.json()
        except ValueError:
            raise BadRequest("the body must be JSON") from None
        if not isinstance(body, dict) or not isinstance(body.get("model"), str):
            raise BadRequest("the body must be a JSON object with a 'model'")

        def work() -> Any:
            from lightml.handle import LightMLHandle

            with LightMLHandle(db, body.get("run"), origin="web", create=False) as handle:
                return apply(handle, body)
        return JSONResponse({"changed": await anyio.to_thread.run_sync(work)})

    async def api_notes(request: Request) -> JSONResponse:
        return await edit(request, lambda h, body: h.set_notes(body["model"], body.get("notes")))

    async def api_hidden(request: Request) -> JSONResponse:
        return await edit(request, lambda h, body: h.set_hidden(body["model"], bool(body.get("hidden", True))))

    routes = [
        Route("/", page),
        Route("/static/{name}", static),
        Route("/favicon.ico", lambda request: Response(status_code=204)),
        Route("/api/runs", api_runs),
        Route("/api/families", api_families),
        Route("/api/pivot", api_pivot),
        Route("/api/lineage", api_lineage),
        Route("/api/curves", api_curves),
        Route("/api/compare", api_compare),
        Route("/api/history", api_history),
        Route("/api/events", api_events),
        Route("/api/export", api_export),
        Route("/api/notes", api_notes, methods=["POST"]),
        Route("/api/hidden", api_hidden, methods=["POST"]),
    ]
    return Starlette(routes=routes, exception_handlers={
        # A registry busy beyond the timeout (another process holds the write lock): try again.
        RegistryLockedError: lambda r, e: JSONResponse({"error": str(e)}, status_code=503),
        TimeoutError: lambda r, e: JSONResponse({"error": str(e)}, status_code=503),
        sqlite3.OperationalError: lambda r, e: JSONResponse({"error": f"registry busy: {e}"}, status_code=503),
        BadRequest: lambda r, e: JSONResponse({"error": str(e)}, status_code=400),
        NotFoundError: lambda r, e: JSONResponse({"error": str(e)}, status_code=404),
        LookupError: lambda r, e: JSONResponse({"error": str(e)}, status_code=404),
        LightMLError: lambda r, e: JSONResponse({"error": str(e)}, status_code=400),
        ValueError: lambda r, e: JSONResponse({"error": str(e)}, status_code=400),
        HTTPException: lambda r, e: JSONResponse({"error": e.detail}, status_code=e.status_code),
    })


def _remove_tree(folder: str) -> None:
    import shutil

    shutil.rmtree(folder, ignore_errors=True)

