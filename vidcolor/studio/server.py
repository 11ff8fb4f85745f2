"""The studio's web server: Starlette routes over one ``Studio``, served by uvicorn.

Safe by default: it listens on 127.0.0.1 unless told otherwise; every request must carry the
random token printed in the URL (query ``token=`` or header ``X-Vidcolor-Token``) and a Host
header naming this server (a web page elsewhere cannot reach it by DNS rebinding); frames and
photos are addressed by number, never by path; uploads are checked before anything is written.
"""

from __future__ import annotations

import json
import secrets
import socket
from importlib import resources

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, PlainTextResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from vidcolor.errors import InputError, VidcolorError
from vidcolor.studio.choices import MAX_UPLOAD_BYTES
from vidcolor.studio.project import Studio
from vidcolor.studio.views import jpeg

STATIC = {"studio.js": "text/javascript", "studio.css": "text/css"}
TOKEN_HEADER = "x-vidcolor-token"
LOOPBACK = "127.0.0.1"
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' blob: data:; media-src 'self'; "
    "style-src 'self'; script-src 'self'; frame-ancestors 'none'",
    "Referrer-Policy": "no-referrer",  # the token is in the URL: never send it elsewhere
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-store",
}


class Guard:
    """ASGI middleware: the token and the Host header, checked before any route runs."""

    def __init__(self, app: ASGIApp, token: str, hosts: set[str]) -> None:
        self.app, self.token, self.hosts = app, token, hosts

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        host = request.headers.get("host", "")
        given = request.query_params.get("token") or request.headers.get(TOKEN_HEADER, "")
        if host not in self.hosts:
            response: Response = PlainTextResponse("unknown host", status_code=403)
        elif not secrets.compare_digest(given.encode(), self.token.encode()):
            response = PlainTextResponse("a valid token is required: open the URL the studio printed", status_code=403)
        else:
            await self.app(scope, receive, _with_headers(send))
            return
        await response(scope, receive, send)


def _with_headers(send: Send) -> Send:
    async def wrapped(message: dict) -> None:
        if message["type"] == "http.response.start":
            headers = list(message.get("headers", []))
            headers += [(k.lower().encode(), v.encode()) for k, v in SECURITY_HEADERS.items()]
            message = {**message, "headers": headers}
        await send(message)

    return wrapped


def _error(exc: Exception, status: int = 400) -> JSONResponse:
    return JSONResponse({"error": str(exc).splitlines()[0] if str(exc) else type(exc).__name__}, status_code=status)


def _static_text(name: str) -> str:
    return resources.files("vidcolor.studio").joinpath("static", name).read_text()


async def _json_body(request: Request, limit: int = 4 * 1024 * 1024) -> object:
    body = await _body(request, limit)
    try:
        return json.loads(body or b"null")
    except ValueError:
        raise InputError("the request body is not JSON") from None


async def _body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise InputError(f"the upload is over {limit // 2**20} MiB")
    data = bytearray()
    async for chunk in request.stream():
        data += chunk
        if len(data) > limit:
            raise InputError(f"the upload is over {limit // 2**20} MiB")
    return bytes(data)


class Routes:
    """The page's requests, each translated into one call on the ``Studio``."""

    def __init__(self, studio: Studio, token: str) -> None:
        self.studio, self.token = studio, token

    def page(self, request: Request) -> Response:
        return Response(_static_text("index.html").replace("__TOKEN__", self.token), media_type="text/html")

    def static(self, request: Request) -> Response:
        name = request.path_params["name"]
        if name not in STATIC:
            return PlainTextResponse("not found", status_code=404)
        return Response(_static_text(name), media_type=STATIC[name])

    def project(self, request: Request) -> Response:
        return JSONResponse(self.studio.project())

    def coverage(self, request: Request) -> Response:
        return JSONResponse(self.studio.coverage())

    def frame(self, request: Request) -> Response:
        view = request.query_params.get("view", "choices")
        try:
            rgb = self.studio.views.rgb(request.path_params["index"], view)
        except VidcolorError as exc:
            return _error(exc, 404 if "does not exist" in str(exc) else 400)
        return Response(jpeg(rgb), media_type="image/jpeg")

    async def hints(self, request: Request) -> Response:
        doc = await _json_body(request)
        return await self._change(self.studio.set_hints, request.path_params["index"], doc)

    async def reference(self, request: Request) -> Response:
        index = request.path_params["index"]
        if request.method == "DELETE":
            return await self._change(self.studio.drop_reference, index)
        return await self._change(self.studio.set_reference, index, await _body(request, MAX_UPLOAD_BYTES))

    async def promote(self, request: Request) -> Response:
        return await self._change(self.studio.promote, request.path_params["index"])

    async def _change(self, change, *args: object) -> Response:
        """Run a change of the choices off the event loop; the choices as they now are, or the error."""
        try:
            await run_in_threadpool(change, *args)
        except VidcolorError as exc:
            return _error(exc)
        return JSONResponse(self.studio.choices.snapshot())

    async def settings(self, request: Request) -> Response:
        try:
            await run_in_threadpool(self.studio.change_settings, await _json_body(request))
        except (VidcolorError, TypeError) as exc:
            return _error(exc)
        project = self.studio.project()
        return JSONResponse({**project["settings"], "model": project["model"], "takes_hints": project["takes_hints"]})

    async def preview(self, request: Request) -> Response:
        try:
            doc = await _json_body(request)
            if not isinstance(doc, dict):
                raise InputError("a preview needs {start, seconds}")
            started = self.studio.start_preview(int(doc.get("start", 0)), float(doc.get("seconds", 3)))
        except (VidcolorError, TypeError, ValueError) as exc:
            return _error(exc)
        return self._job(started)

    def preview_file(self, request: Request) -> Response:
        path = self.studio.preview_path
        if not path.is_file() or self.studio.jobs.busy():
            return PlainTextResponse("no preview yet", status_code=404)
        return FileResponse(path, media_type="video/mp4")

    async def render(self, request: Request) -> Response:
        try:
            doc = await _json_body(request)
            started = self.studio.start_render(overwrite=bool(isinstance(doc, dict) and doc.get("overwrite")))
        except VidcolorError as exc:
            return _error(exc, 409)
        return self._job(started)

    def _job(self, started: bool) -> Response:
        return JSONResponse({"started": started, "job": self.studio.jobs.state()}, status_code=202 if started else 409)

    def cancel(self, request: Request) -> Response:
        return JSONResponse({"cancelled": self.studio.jobs.cancel(), "job": self.studio.jobs.state()})

    def job(self, request: Request) -> Response:
        return JSONResponse(self.studio.jobs.state())


def create_app(studio: Studio, token: str, hosts: set[str]) -> ASGIApp:
    """The studio's ASGI app (``hosts``: the Host header values accepted, e.g. ``127.0.0.1:8765``)."""
    r = Routes(studio, token)
    routes = [
        Route("/", r.page),
        Route("/static/{name}", r.static),
        Route("/api/project", r.project),
        Route("/api/coverage", r.coverage),
        Route("/api/frame/{index:int}", r.frame),
        Route("/api/hints/{index:int}", r.hints, methods=["PUT"]),
        Route("/api/reference/{index:int}", r.reference, methods=["PUT", "DELETE"]),
        Route("/api/reference/{index:int}/promote", r.promote, methods=["POST"]),
        Route("/api/settings", r.settings, methods=["PUT"]),
        Route("/api/preview", r.preview, methods=["POST"]),
        Route("/api/preview.mp4", r.preview_file),
        Route("/api/render", r.render, methods=["POST"]),
        Route("/api/cancel", r.cancel, methods=["POST"]),
        Route("/api/job", r.job),
    ]
    return Guard(Starlette(routes=routes), token, hosts)


def bind(host: str, port: int) -> socket.socket:
    """A listening socket on ``host``:``port`` (0: any free port); OSError where it is taken."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(64)
    return sock


def accepted_hosts(host: str, port: int) -> set[str]:
    names = {host, "localhost", LOOPBACK, "[::1]"} if host in (LOOPBACK, "localhost", "::1") else {host}
    return {f"{n}:{port}" for n in names} | ({f"[{host}]:{port}"} if ":" in host else set())


def serve(studio: Studio, sock: socket.socket, token: str, hosts: set[str]) -> None:
    """Serve until Ctrl-C; then the running job is cancelled (its partial file removed)."""
    import uvicorn

    app = create_app(studio, token, hosts)
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
    try:
        server.run(sockets=[sock])
    finally:
        studio.close()


def studio_url(host: str, port: int, token: str) -> str:
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}/?token={token}"
