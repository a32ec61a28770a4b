"""`dedup serve`: the HTTP API over `dedup.service` (FastAPI on uvicorn; the `serve` extra).

Endpoints: `GET /health`, `POST /query` (multipart field `image`), `POST /compare` (fields `a`
and `b`); the OpenAPI page is at `/docs`. Every error is JSON `{"error": "..."}`.
"""
from __future__ import annotations

import hmac
import ipaddress
import json
import os
from pathlib import Path
from typing import Any

import uvicorn
from fastapi import FastAPI, File, Query, UploadFile
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from dedup import __version__
from dedup.config import MAX_K, MAX_UPLOAD_BYTES
from dedup.errors import DedupError, UsageError
from dedup.report import comparison_dict, neighbor_dict

ENV = "DEDUP_SERVE"  # how worker processes learn the options: index, model, token, limit


def check_bind(host: str, token: str | None) -> None:
    """A service reachable from other machines must require a token."""
    try:
        local = ipaddress.ip_address(host).is_loopback
    except ValueError:
        local = host == "localhost"
    if not local and not token:
        raise UsageError(f"serving on {host} (reachable from other machines) needs a token")


def create_app(service, token: str | None = None, max_upload: int = MAX_UPLOAD_BYTES):
    """The ASGI app answering for `service` (a `dedup.service.Service`); with `token`, every
    request but the API page needs `Authorization: Bearer TOKEN`."""
    app = FastAPI(title="dedup", summary="Find the catalog images that look like an uploaded image.",
                  version=__version__)

    class Refused(Exception):
        def __init__(self, status: int, message: str):
            self.status, self.message = status, message

    @app.exception_handler(Refused)
    async def refused(_, exc: Refused):
        return JSONResponse({"error": exc.message}, exc.status)

    @app.exception_handler(RequestValidationError)
    async def invalid(_, exc: RequestValidationError):
        what = "; ".join(f"{'.'.join(str(p) for p in e.get('loc', ()))}: {e.get('msg')}" for e in exc.errors())
        return JSONResponse({"error": what or "bad request"}, 400)

    @app.exception_handler(HTTPException)
    async def http_error(_, exc: HTTPException):
        return JSONResponse({"error": str(exc.detail)}, exc.status_code)

    @app.exception_handler(Exception)
    async def unexpected(_, exc: Exception):
        return JSONResponse({"error": f"internal error: {type(exc).__name__}"}, 500)

    async def read(upload: UploadFile) -> bytes:
        data = await upload.read(max_upload + 1)
        if len(data) > max_upload:
            raise Refused(413, f"upload larger than {max_upload} bytes")
        return data

    async def call(fn, *args):
        try:
            return await run_in_threadpool(fn, *args)
        except DedupError as exc:
            raise Refused(400, str(exc)) from None

    @app.get("/health", summary="Rows, generation and model of the index being served")
    async def health() -> dict[str, Any]:
        return service.health()

    @app.post("/query", summary="The catalog images nearest to an uploaded image, as `dedup query` gives them")
    async def query(image: UploadFile = File(..., description="the query image"),
                    k: int = Query(10, ge=1, le=MAX_K, description="neighbours to return"),
                    threshold: float | None = Query(None, gt=0, le=2, description="only neighbours closer than this"),
                    verify: bool = Query(False, description="add the pair check's verdict `same` per neighbour"),
                    pasted: bool = Query(True, description="with verify: also the neighbours of a picture pasted into the upload"),
                    windows: bool = Query(True, description="with verify: also those confirmed through windows (a crop, a picture on a busier one)"),
                    keypoint_search: bool = Query(True, description="with verify: an upload nothing else matched, by keypoints shared with a catalog image")):
        found = await call(service.query, await read(image), k, threshold, verify, pasted, windows, keypoint_search)
        return {"neighbors": [neighbor_dict(n) for n in found]}

    @app.post("/compare", summary="Distance and verdict of two uploaded images, as `dedup compare` gives them")
    async def compare(a: UploadFile = File(...), b: UploadFile = File(...)):
        return comparison_dict(await call(service.compare, await read(a), await read(b)))

    return _Guard(app, token, max_upload)


class _Guard:
    """Plain ASGI middleware (no per-request task hop): the token check and the size limit by
    Content-Length, before the body is read."""

    def __init__(self, app, token: str | None, max_upload: int):
        self.app, self.max_upload = app, max_upload
        self.expected = f"Bearer {token}".encode() if token else None

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http":
            headers = dict(scope["headers"])
            if self.expected and scope["path"] not in ("/docs", "/openapi.json") and not hmac.compare_digest(
                    headers.get(b"authorization", b""), self.expected):
                return await JSONResponse({"error": "missing or wrong token (send Authorization: Bearer TOKEN)"},
                                          401)(scope, receive, send)
            length = headers.get(b"content-length", b"")
            if length.isdigit() and int(length) > self.max_upload + 64 * 1024:
                return await JSONResponse({"error": f"upload larger than {self.max_upload} bytes"}, 413)(scope, receive, send)
        await self.app(scope, receive, send)


def app_from_env():
    """The app of one worker process, built from the options `serve` put in the environment."""
    from dedup.loading import load_model
    from dedup.service import Service

    opts = json.loads(os.environ[ENV])
    service = Service(Path(opts["index"]), load_model(opts["model"]) if opts["model"] else None)
    return create_app(service, opts["token"], opts["max_upload"])


def serve(index_dir: Path, *, host: str = "127.0.0.1", port: int = 8000, token: str | None = None,
          workers: int = 1, model: str | None = None, max_upload: int = MAX_UPLOAD_BYTES) -> None:
    """Run the service until interrupted; each of `workers` processes loads model and index once."""
    check_bind(host, token)
    if workers < 1:
        raise UsageError(f"workers must be at least 1, got {workers}", option="workers")
    from dedup.manifest import Manifest

    Manifest.load(index_dir)  # a missing or damaged index is a one-line error before any worker starts
    os.environ[ENV] = json.dumps({"index": str(Path(index_dir).resolve()), "model": model, "token": token,
                                  "max_upload": max_upload})
    uvicorn.run("dedup.server:app_from_env", factory=True, host=host, port=port, workers=workers,
                log_level="warning", access_log=False)
