"""The dashboard's Starlette app: the page, its static files and the JSON API.

Reads run the library's read queries (``lightml.read``) on aiosqlite read-only connections:
the same definitions the handles and the CLI run on sqlite3 (``lightml.read.sql``). The
compare, history and Excel endpoints reuse the library's synchronous functions in a worker
thread, on their own read-only connection. The two edit endpoints (notes, hide) write
through a handle and need the per-process token that only the served page knows: no CORS
headers are sent, so another origin can neither read the page to learn it nor send the
custom header. Their bodies are capped (MAX_EDIT_BODY_BYTES, 413), and an edit of a
registry that cannot be written is refused with 409 before it is tried.

Every answer is JSON, errors included: bad input is a 4xx naming the problem (integers are
bounded to SQLite's 64-bit range), a locked registry 503, and anything unexpected a JSON 500.

Against DNS rebinding only requests addressed to a local name or to the configured ``--host``
are answered, and a POST whose ``Origin`` names another host is refused (``web.security``).
"""

from __future__ import annotations

import asyncio
import html
import json
import os
import secrets
import sqlite3
import stat
import tempfile
from importlib import resources
from pathlib import Path
from typing import Any, Callable
from urllib.parse import quote, urlsplit

import anyio.to_thread
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from lightml.errors import ConflictError, LightMLError, NotFoundError, RegistryLockedError
from lightml.read import catalog, dashboard
from lightml.read import filters
from lightml.read.pivot import PivotTables
from lightml.log.engine import engine_for, server_driver_errors
from lightml.read.sql import Query, reading, reading_async, run_async
from lightml.web.security import LOCAL_HOSTS, LocalHostsOnly, RefuseForeignOrigin
from lightml.write.validation import check_int_range

TOKEN_HEADER = "X-LightML-Token"
# The page's own files: its style sheet and its JavaScript modules (main.js imports the rest).
SCRIPTS = ("main.js", "core.js", "table.js", "details.js", "display.js", "views.js", "summary.js", "columns.js",
           "graph.js", "curves.js", "charts.js")
STYLES = ("app.css", "charts.css", "lineage.css")
STATIC = {name: "text/css; charset=utf-8" for name in STYLES} | {name: "text/javascript; charset=utf-8" for name in SCRIPTS}
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
# An edit's body is a model name, a run name and a note: a megabyte is far more than any of
# them needs, and a bigger body is refused before it is read into memory.
MAX_EDIT_BODY_BYTES = 1024 * 1024
# Flips listed per request (the page shows the first ones; the CLI's --json gives them all).
FLIPS_SHOWN = 100
FLIPS_SHOWN_MAX = 1000


class BadRequest(Exception):
    """A malformed or missing parameter: answered with 400."""


class BodyTooLarge(Exception):
    """A request body over MAX_EDIT_BODY_BYTES: answered with 413."""


class ReadOnlyRegistry(Exception):
    """The registry file or its folder cannot be written: an edit is answered with 409."""


def _param(request: Request, name: str, required: bool = True) -> str | None:
    value = request.query_params.get(name)
    if value is None or value == "":
        if required:
            raise BadRequest(f"missing parameter {name!r}")
        return None
    return value


def _flag_param(request: Request, name: str) -> bool:
    raw = request.query_params.get(name, "0").lower()
    if raw in ("1", "true", "yes"):
        return True
    if raw in ("0", "false", "no", ""):
        return False
    raise BadRequest(f"parameter {name!r} must be 1 or 0 (true or false), got {raw!r}")


def _int_param(request: Request, name: str, default: int) -> int:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw) if len(raw) <= 40 else None  # int() of thousands of digits is slow, then refused
    except ValueError:
        value = None
    if value is None:
        shown = raw if len(raw) <= 40 else f"{raw[:40]}... ({len(raw)} characters)"
        raise BadRequest(f"parameter {name!r} must be an integer, got {shown!r}")
    if value < 0:
        raise BadRequest(f"parameter {name!r} must not be negative")
    return check_int_range(value, f"parameter {name!r}", 0)  # SQLite's 64-bit range


async def _json_body(request: Request) -> Any:
    """The request body parsed as JSON: BodyTooLarge past MAX_EDIT_BODY_BYTES (by its
    Content-Length, or while it streams in without one), BadRequest if it is not JSON or is
    nested too deeply for the parser."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and len(declared) < 20 and int(declared) > MAX_EDIT_BODY_BYTES:
        raise BodyTooLarge()
    received = bytearray()
    async for chunk in request.stream():
        received += chunk
        if len(received) > MAX_EDIT_BODY_BYTES:
            raise BodyTooLarge()
    try:
        return json.loads(received)
    except RecursionError:
        raise BadRequest("the body is nested too deeply: it must be a flat JSON object") from None
    except ValueError:  # not JSON, not UTF-8, or an integer of more than 4300 digits
        raise BadRequest("the body must be JSON") from None


def _refuse_if_read_only(db: str) -> None:
    """ReadOnlyRegistry when the registry file or its folder cannot be written (SQLite writes
    the -wal and -shm files next to it): said before an edit is tried, not as SQLite's error
    half-way. Write permission removed from every class (``chmod a-w``) counts too: root
    could still write, but whoever did it meant the file not to change."""
    for path, what in ((Path(db), "file"), (Path(db).parent, "folder")):
        try:
            mode = path.stat().st_mode
        except OSError:
            continue  # gone: the handle says so
        if not os.access(path, os.W_OK) or not mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH):
            raise ReadOnlyRegistry(f"the registry is read-only (its {what} {path} cannot be written): "
                                   "the dashboard can show it but not edit it")


def create_app(db_path: str | Path, host: str = "127.0.0.1") -> Starlette:
    """The dashboard of the registry at ``db_path``. ``host`` is the address or name the server
    listens on (``lightml gui --host``): besides the local names, requests must be addressed to it."""
    engine = engine_for(db_path).resolved()
    db, shown_db = engine.db, engine.location  # (the page shows the registry without a password)
    with reading(db):
        pass  # fail now, with a clear error, if it is not a registry
    token = secrets.token_urlsafe(32)

    async def answer(query: Query, *args: Any) -> Any:
        """The query's answer, on a read-only connection of its own."""
        async with reading_async(db) as conn:
            return await query.run_async(conn, *args)

    def in_thread(work: Callable[[sqlite3.Connection], Any]) -> Any:
        def run() -> Any:
            with reading(db) as conn:
                return work(conn)
        return anyio.to_thread.run_sync(run)

    async def page(request: Request) -> HTMLResponse:
        text = resources.files("lightml.web.static").joinpath("index.html").read_text(encoding="utf-8")
        text = text.replace("{{TOKEN}}", token).replace("{{DB}}", html.escape(shown_db))
        # Never inside another site's frame: it could trick a click on the edit buttons.
        return HTMLResponse(text, headers={"Cache-Control": "no-store", "X-Frame-Options": "DENY",
                                           "Content-Security-Policy": "frame-ancestors 'none'"})

    async def static(request: Request) -> Response:
        name = request.path_params["name"]
        if name not in STATIC:
            raise HTTPException(404, "no such file")
        body = resources.files("lightml.web.static").joinpath(name).read_bytes()
        return Response(body, media_type=STATIC[name])

    async def api_runs(request: Request) -> JSONResponse:
        return JSONResponse([{"id": r["id"], "run": r["run"], "models": r["models"]}
                             for r in await answer(catalog.list_runs)])

    async def api_families(request: Request) -> JSONResponse:
        return JSONResponse(await answer(dashboard.metric_families))

    # The registry changes only through events (or a replay): a table computed at a log
    # position is the answer until the position moves; after a change, it is rebuilt from
    # per-family blocks, only the changed families' (``read.pivot``). One request at a time
    # uses those caches.
    pivot_tables = PivotTables()
    pivot_lock = asyncio.Lock()

    async def api_pivot(request: Request) -> Response:
        family = _param(request, "family", required=False)
        run = _param(request, "run", required=False)
        checkpoints = _flag_param(request, "checkpoints")
        include_hidden = _flag_param(request, "include_hidden")
        where = _param(request, "where", required=False)
        if where is not None:
            filters.parse(where)  # (a bad expression: a 400 naming where it went wrong, before any read)
        async with reading_async(db) as conn, pivot_lock:
            body = await run_async(conn, pivot_tables.table(family, run, checkpoints, include_hidden, where))
        return Response(body, media_type="application/json")

    async def api_lineage(request: Request) -> JSONResponse:
        return JSONResponse(await answer(dashboard.lineage))

    async def api_curves(request: Request) -> JSONResponse:
        family, metric = _param(request, "family"), _param(request, "metric")
        return JSONResponse(await answer(dashboard.curves, family, metric))

    async def api_compare(request: Request) -> JSONResponse:
        from lightml.read.compare import compare_in

        a, b = _param(request, "a"), _param(request, "b")
        run_a, run_b = _param(request, "run_a", False), _param(request, "run_b", False)
        result = await in_thread(lambda conn: compare_in(conn, a, b, run_a=run_a, run_b=run_b))
        return JSONResponse(result.to_dict())

    async def api_flips(request: Request) -> JSONResponse:
        from lightml.read import flips, resolve

        a, b = _param(request, "a"), _param(request, "b")
        family, metric = _param(request, "family"), _param(request, "metric")
        run_a, run_b = _param(request, "run_a", False), _param(request, "run_b", False)
        limit = min(_int_param(request, "limit", FLIPS_SHOWN), FLIPS_SHOWN_MAX)

        def work(conn):
            ref_a, ref_b = resolve.find_model(conn, a, run_a), resolve.find_model(conn, b, run_b)
            return flips.flips_of(conn, ref_a, ref_b, family, metric, limit=limit)
        found = await in_thread(work)
        return JSONResponse({**found.counts(), "flips": found.items})

    async def api_history(request: Request) -> JSONResponse:
        from lightml.read import queries, resolve

        model, family, metric = _param(request, "model"), _param(request, "family"), _param(request, "metric")
        run_name = _param(request, "run", required=False)
        step = request.query_params.get("step")
        step_value = _int_param(request, "step", 0) if step not in (None, "") else None

        def work(conn):
            run = resolve.require_run_id(conn, run_name)
            ids = queries.history_metric_ids(conn, model, family, metric, step_value, run, run_name)
            return queries.metric_history(conn, ids, family)
        entries = await in_thread(work)
        if not entries:
            # Say what is missing: the family, its metric, or only this model's value of it.
            # (Checked only now: a deleted model's history may name a family no live row has.)
            await answer(dashboard.require_family, family, metric)
            at_step = f" at step {step_value}" if step_value is not None else ""
            raise NotFoundError(f"model {model!r} has no value of {family}/{metric}{at_step}")
        return JSONResponse(entries)

    async def api_events(request: Request) -> JSONResponse:
        after = _int_param(request, "after", 0)
        return JSONResponse(await answer(dashboard.events_after, after))

    async def api_export(request: Request) -> Response:
        from lightml.report.export import export_excel

        name = f"{Path(db).stem if engine.dialect == 'sqlite' else Path(urlsplit(db).path).name}_report.xlsx"

        def build() -> bytes:
            # The report is read back into memory so that its temporary folder is removed here,
            # whether the export succeeds or raises, and not left to a task after the download.
            with tempfile.TemporaryDirectory(prefix="lightml-export-") as folder:
                path = Path(folder) / name
                export_excel(db, path)
                return path.read_bytes()
        body = await anyio.to_thread.run_sync(build)
        return Response(body, media_type=XLSX, headers={"Content-Disposition": _attachment(name)})

    async def authorized_body(request: Request) -> dict[str, Any]:
        """The JSON object body of an edit, after the token check."""
        # Header values may hold any byte (decoded as latin-1), and compare_digest refuses
        # non-ASCII str: compare bytes, so a strange header is a wrong token, not a crash.
        given = request.headers.get(TOKEN_HEADER, "")
        if not secrets.compare_digest(given.encode(), token.encode()):
            raise HTTPException(403, "missing or wrong token: edits come from the dashboard page only")
        body = await _json_body(request)
        if not isinstance(body, dict):
            raise BadRequest("the body must be a JSON object")
        return body

    async def edit_body(request: Request) -> dict[str, Any]:
        """The JSON body of a model's edit, after the token check; ``model`` and ``run`` validated."""
        body = await authorized_body(request)
        if not isinstance(body.get("model"), str):
            raise BadRequest("the body must be a JSON object with a 'model'")
        if not isinstance(body.get("run"), (str, type(None))):
            raise BadRequest("'run' must be a string or null")
        return body

    def refuse_if_read_only() -> None:
        if engine.dialect == "sqlite":  # (a server's registry says so itself: see _driver_error)
            _refuse_if_read_only(db)

    async def write(body: dict[str, Any], apply: Callable[[Any, str], Any]) -> JSONResponse:
        """Run ``apply(handle, model name)`` on the model the body names, by the naming rule
        every read follows (``RUN/MODEL``, ``MODEL@RUN``, ``run`` preferred), through a
        handle on that model's own run. Its answer is ``{"changed": ...}``, or the dict it returns."""
        def work() -> Any:
            from lightml.handle import LightMLHandle
            from lightml.read.resolve import find_model

            refuse_if_read_only()
            with reading(db) as conn:
                ref = find_model(conn, body["model"], body.get("run"))
            with LightMLHandle(db, ref.run_name, origin="web", create=False) as handle:
                return apply(handle, ref.model_name)
        answer = await anyio.to_thread.run_sync(work)
        return JSONResponse(answer if isinstance(answer, dict) else {"changed": answer})

    async def write_unbound(apply: Callable[[Any], Any]) -> Any:
        """Run ``apply(handle)`` through a handle on no run (dashboard items, restores)."""
        def work() -> Any:
            from lightml.handle import LightMLHandle

            refuse_if_read_only()
            with LightMLHandle(db, None, origin="web", create=False) as handle:
                return apply(handle)
        return await anyio.to_thread.run_sync(work)

    async def api_notes(request: Request) -> JSONResponse:
        body = await edit_body(request)
        notes = body.get("notes", False)  # False: absent, which is refused like any non-text
        if not isinstance(notes, (str, type(None))):
            raise BadRequest("'notes' must be a string or null")
        return await write(body, lambda h, model: h.set_notes(model, notes))

    async def api_hidden(request: Request) -> JSONResponse:
        body = await edit_body(request)
        hidden = body.get("hidden")
        # Strict: bool("false") is True, so anything but a JSON boolean would hide the model.
        if not isinstance(hidden, bool):
            shown = repr(hidden) if len(repr(hidden)) <= 60 else f"{repr(hidden)[:60]}..."
            raise BadRequest(f"'hidden' must be true or false (a JSON boolean), got {shown}")
        return await write(body, lambda h, model: h.set_hidden(model, hidden))

    def _text_field(body: dict[str, Any], key: str, nullable: bool = False) -> str | None:
        value = body.get(key)
        if isinstance(value, str) or (nullable and value is None and key in body):
            return value
        raise BadRequest(f"'{key}' must be a string{' or null' if nullable else ''}")

    async def api_rename(request: Request) -> JSONResponse:
        body = await edit_body(request)
        new_name = _text_field(body, "name")
        return await write(body, lambda h, model: h.rename_model(model, new_name))

    async def api_parent(request: Request) -> JSONResponse:
        from lightml.read.resolve import find_model

        body = await edit_body(request)
        parent = _text_field(body, "parent", nullable=True)
        parent_run = body.get("parent_run")
        if not isinstance(parent_run, (str, type(None))):
            raise BadRequest("'parent_run' must be a string or null")

        def apply(handle, model: str) -> bool:
            if parent is None:
                return handle.set_parent(model, None)
            with reading(db) as conn:  # (a parent in another run is named RUN/MODEL, as everywhere)
                ref = find_model(conn, parent, parent_run)
            same_run = ref.run_name == handle.run_name
            return handle.set_parent(model, ref.model_name if same_run else f"{ref.run_name}/{ref.model_name}")
        return await write(body, apply)

    async def api_delete(request: Request) -> JSONResponse:
        body = await edit_body(request)
        if body.get("confirm") != body["model"]:  # (the page asks for the name typed again, as the CLI asks y/N)
            raise BadRequest("to delete a model, 'confirm' must repeat its name")

        def apply(handle, model: str) -> dict[str, Any]:
            import shlex

            result = handle.delete_model(model)
            where = f"--db {shlex.quote(shown_db)} --model {shlex.quote(model)}"
            if handle.run_name is not None:
                where += f" --run {shlex.quote(handle.run_name)}"
            return {"changed": True, "deleted": str(result), "seq": result.seq,
                    "restore": f"Restore it from the dashboard's deleted models, or: lightml restore {where}"}
        return await write(body, apply)

    async def api_restore(request: Request) -> JSONResponse:
        body = await edit_body(request)
        model_id = await write_unbound(lambda h: h.restore_model(body["model"], run_name=body.get("run")))
        return JSONResponse({"changed": True, "id": model_id})

    async def api_deleted(request: Request) -> JSONResponse:
        return JSONResponse(await answer(dashboard.deleted_models))

    async def api_settings_marks(request: Request) -> JSONResponse:
        return JSONResponse(await answer(dashboard.settings_marks, _param(request, "family"),
                                         _param(request, "run", required=False), _flag_param(request, "include_hidden")))

    async def api_model(request: Request) -> JSONResponse:
        return JSONResponse(await answer(dashboard.model_panel, _int_param(request, "id", 0)))

    async def api_items(request: Request) -> JSONResponse:
        from lightml.read.dashboard_items import dashboard_items
        from lightml.write.dashboard_items import check_kind

        kind = _param(request, "kind", required=False)
        return JSONResponse(await answer(dashboard_items, None if kind is None else check_kind(kind),
                                         _flag_param(request, "removed")))

    async def api_item_save(request: Request) -> JSONResponse:
        body = await authorized_body(request)
        item_id = await write_unbound(lambda h: h.save_dashboard_item(
            body.get("kind"), body.get("name"), body.get("spec"), body.get("id")))
        return JSONResponse({"id": item_id})

    async def api_item_remove(request: Request) -> JSONResponse:
        body = await authorized_body(request)
        return JSONResponse({"changed": await write_unbound(lambda h: h.remove_dashboard_item(body.get("id")))})

    async def api_item_restore(request: Request) -> JSONResponse:
        body = await authorized_body(request)
        return JSONResponse({"changed": await write_unbound(lambda h: h.restore_dashboard_item(body.get("id")))})

    async def api_item_reorder(request: Request) -> JSONResponse:
        body = await authorized_body(request)
        return JSONResponse({"changed": await write_unbound(
            lambda h: h.reorder_dashboard_items(body.get("kind"), body.get("ids")))})

    async def api_summary(request: Request) -> JSONResponse:
        from lightml.read.dashboard_items import dashboard_item
        from lightml.read.summary import summary_rows

        item_id = _int_param(request, "id", 0)
        item = await answer(dashboard_item, item_id)
        if item is None or item["kind"] != "summary" or item["removed"]:
            raise NotFoundError(f"no summary set #{item_id}")
        metrics = [tuple(pair) for pair in item["spec"]["metrics"]]
        rows = await answer(summary_rows, metrics, _flag_param(request, "include_hidden"))
        return JSONResponse({"id": item_id, "name": item["name"], "metrics": item["spec"]["metrics"], "rows": rows})

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
        Route("/api/flips", api_flips),
        Route("/api/history", api_history),
        Route("/api/events", api_events),
        Route("/api/export", api_export),
        Route("/api/notes", api_notes, methods=["POST"]),
        Route("/api/hidden", api_hidden, methods=["POST"]),
        Route("/api/rename", api_rename, methods=["POST"]),
        Route("/api/parent", api_parent, methods=["POST"]),
        Route("/api/delete", api_delete, methods=["POST"]),
        Route("/api/restore", api_restore, methods=["POST"]),
        Route("/api/deleted", api_deleted),
        Route("/api/model", api_model),
        Route("/api/settings-marks", api_settings_marks),
        Route("/api/items", api_items),
        Route("/api/items/save", api_item_save, methods=["POST"]),
        Route("/api/items/remove", api_item_remove, methods=["POST"]),
        Route("/api/items/restore", api_item_restore, methods=["POST"]),
        Route("/api/items/reorder", api_item_reorder, methods=["POST"]),
        Route("/api/summary", api_summary),
    ]
    # Names requests may be addressed to: the local ones and the configured host.
    configured = host.strip("[]").lower()
    hosts = {*LOCAL_HOSTS, configured}
    middleware = [Middleware(LocalHostsOnly, hosts=hosts), Middleware(RefuseForeignOrigin, hosts=hosts)]
    return Starlette(routes=routes, middleware=middleware, exception_handlers={
        # A registry busy beyond the timeout (another process holds the write lock): try again.
        RegistryLockedError: lambda r, e: JSONResponse({"error": str(e)}, status_code=503),
        TimeoutError: lambda r, e: JSONResponse({"error": str(e)}, status_code=503),
        sqlite3.OperationalError: _operational_error,
        **{error: _driver_error for error in server_driver_errors()},
        ReadOnlyRegistry: lambda r, e: JSONResponse({"error": str(e)}, status_code=409),
        BodyTooLarge: lambda r, e: JSONResponse(
            {"error": f"the request body is larger than {MAX_EDIT_BODY_BYTES} bytes"}, status_code=413),
        BadRequest: lambda r, e: JSONResponse({"error": str(e)}, status_code=400),
        NotFoundError: lambda r, e: JSONResponse({"error": str(e)}, status_code=404),
        # A name taken, a cycle, a removed item changed: the request is sound, the registry refuses it.
        ConflictError: lambda r, e: JSONResponse({"error": str(e)}, status_code=409),
        LookupError: lambda r, e: JSONResponse({"error": str(e)}, status_code=404),
        LightMLError: lambda r, e: JSONResponse({"error": str(e)}, status_code=400),
        ValueError: lambda r, e: JSONResponse({"error": str(e)}, status_code=400),
        HTTPException: lambda r, e: JSONResponse({"error": e.detail}, status_code=e.status_code),
        # Anything else is a bug or a broken registry file, still answered in JSON the page can
        # show (Starlette's own answer is a plain-text page); the server logs the traceback.
        Exception: _unexpected_error,
    })


def _operational_error(request: Request, exc: sqlite3.OperationalError) -> JSONResponse:
    """SQLite refusing a write to a read-only file (not writable by this user, a read-only
    mount) is 409 like ReadOnlyRegistry; any other operational error is a busy registry."""
    if "readonly" in str(exc) or "read-only" in str(exc):
        return JSONResponse({"error": f"the registry is read-only: the dashboard can show it but not edit it ({exc})"},
                            status_code=409)
    return JSONResponse({"error": f"registry busy: {exc}"}, status_code=503)


def _driver_error(request: Request, exc: Exception) -> JSONResponse:
    """A PostgreSQL registry refusing an edit (a read-only role or server) is 409 like
    ReadOnlyRegistry; a server that went away or any other refusal, a 503 to try again."""
    text = " ".join(str(exc).split())[:300]
    if getattr(exc, "sqlstate", None) in ("25006", "42501"):  # read_only_sql_transaction, insufficient_privilege
        return JSONResponse({"error": f"the registry is read-only: the dashboard can show it but not edit it ({text})"},
                            status_code=409)
    return JSONResponse({"error": f"registry unavailable: {text}"}, status_code=503)


def _unexpected_error(request: Request, exc: Exception) -> JSONResponse:
    message = " ".join(str(exc).split())[:200] or "no message"
    return JSONResponse({"error": f"internal error ({type(exc).__name__}: {message})"}, status_code=500)


def _attachment(filename: str) -> str:
    """A Content-Disposition for a download; RFC 5987 encoding when the name is not plain ASCII."""
    quoted = quote(filename)
    return f'attachment; filename="{filename}"' if quoted == filename else f"attachment; filename*=utf-8''{quoted}"

