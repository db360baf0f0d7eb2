"""The labeling page and its JSON API over a ``LabelingSession``, served by uvicorn on this machine.
Every bad request is answered with a 4xx and ``{"error": ...}``, and the server goes on serving."""

from __future__ import annotations

import errno
import ipaddress
import json
import socket
from importlib.resources import files

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from ..errors import UserError
from .label_store import Refused
from .labeling import LabelingSession

LOOPBACK_NAMES = ["127.0.0.1", "localhost", "::1", "[::1]"]


async def json_fields(request: Request, **kinds: type) -> dict:
    """The request's JSON object, holding each of ``kinds`` with a value of that type."""
    example = json.dumps({name: "..." if kind is str else 20 for name, kind in kinds.items()})
    try:
        body = await request.json()
    except ValueError:
        raise Refused(f"the body is not JSON; send an object like {example}") from None
    if not isinstance(body, dict):
        raise Refused(f"the body must be a JSON object like {example}")
    for name, kind in kinds.items():
        if not isinstance(body.get(name), kind) or isinstance(body.get(name), bool):
            wanted = "a string" if kind is str else "a whole number"
            raise Refused(f"\"{name}\" must be {wanted}; send an object like {example}")
    return body


def check_json_post(request: Request) -> None:
    """POSTs must say they carry JSON: a page on another site cannot send that without the browser
    asking this server first, and this server never agrees, so no other site can write labels."""
    if request.headers.get("content-type", "").split(";")[0].strip().lower() != "application/json":
        raise Refused("send the body as JSON with the header Content-Type: application/json", 415)


def create_app(session: LabelingSession, allowed_hosts: list[str] | None = None) -> Starlette:
    """The page at ``/``, the API under ``/api``, the pool's images at ``/image/<id>``."""
    page = files(__package__).joinpath("label_page.html").read_text(encoding="utf-8")

    async def index(request: Request) -> Response:
        return HTMLResponse(page)

    async def next_sample(request: Request) -> Response:
        return JSONResponse(session.next())

    async def label(request: Request) -> Response:
        check_json_post(request)
        body = await json_fields(request, id=str, label=str)
        return JSONResponse(await run_in_threadpool(session.label, body["id"], body["label"]))

    async def undo(request: Request) -> Response:
        check_json_post(request)
        return JSONResponse(await run_in_threadpool(session.undo))

    async def skip(request: Request) -> Response:
        check_json_post(request)
        body = await json_fields(request, id=str)
        return JSONResponse(session.skip(body["id"]))

    async def image(request: Request) -> Response:
        return Response(session.image(request.path_params["id"]), media_type="image/png")

    async def selection(request: Request) -> Response:
        if request.method == "GET":
            return JSONResponse(session.selection.state())
        check_json_post(request)
        body = await json_fields(request, n=int)
        return JSONResponse(session.start_selection(body["n"]), status_code=202)

    async def refused(request: Request, exc: Exception) -> Response:
        return JSONResponse({"error": str(exc)}, status_code=exc.status)  # type: ignore[attr-defined]

    async def http_error(request: Request, exc: Exception) -> Response:
        return JSONResponse({"error": exc.detail}, status_code=exc.status_code,  # type: ignore[attr-defined]
                            headers=exc.headers)  # type: ignore[attr-defined]

    async def unexpected(request: Request, exc: Exception) -> Response:
        return JSONResponse({"error": f"{type(exc).__name__}: {exc}"}, status_code=500)

    routes = [Route("/", index), Route("/api/next", next_sample), Route("/api/label", label, methods=["POST"]),
              Route("/api/undo", undo, methods=["POST"]), Route("/api/skip", skip, methods=["POST"]),
              Route("/api/select", selection, methods=["GET", "POST"]), Route("/image/{id:path}", image)]
    return Starlette(routes=routes, middleware=[Middleware(TrustedHostMiddleware, allowed_hosts=allowed_hosts)],
                     exception_handlers={Refused: refused, HTTPException: http_error, Exception: unexpected})


def is_loopback(host: str) -> bool:
    try:
        return host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def listen(host: str, port: int) -> socket.socket:
    """The listening socket, bound before anything is served, so that a taken port is a one-line error."""
    try:
        family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
    except socket.gaierror as e:
        raise UserError(f"--host {host}: not an address of this machine ({e.strerror}); use 127.0.0.1") from None
    try:
        return socket.create_server((host, port), family=family)
    except OSError as e:
        if e.errno == errno.EADDRINUSE:
            raise UserError(f"--port {port} is in use; pass another --port (0 picks a free one)") from None
        raise UserError(f"cannot listen on {host} port {port} ({e.strerror}); pass another --host or --port") from None


def serve(session: LabelingSession, host: str = "127.0.0.1", port: int = 8765) -> None:
    """Serve until Ctrl+C. On a loopback address only requests naming this machine are answered (no DNS
    rebinding)."""
    import uvicorn

    sock = listen(host, port)
    shown = f"[{host}]" if ":" in host else host
    url = f"http://{shown}:{sock.getsockname()[1]}/"
    if session.store.repaired:
        print(session.store.repaired)
    progress = session.progress()
    print(f"labeling page: {url}  ({progress['done']} of {progress['total']} queued samples labeled; Ctrl+C stops "
          "the server)", flush=True)
    app = create_app(session, LOOPBACK_NAMES + [host] if is_loopback(host) else None)
    uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off")).run(sockets=[sock])
