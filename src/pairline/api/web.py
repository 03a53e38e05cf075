"""The page a stranger uses: `/` serves it, `/static/…` its scripts, styles and vendored code.

The files live in `pairline/web/` and ship inside the package, so a fresh install works offline
(no CDN). They carry no version in their names, so every response says `no-cache`: the browser
revalidates each file (a cheap 304 through ETag/Last-Modified) and never runs a stale mix of
modules after an upgrade.
"""

from __future__ import annotations

from pathlib import Path, PurePosixPath

from starlette.requests import Request
from starlette.responses import FileResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

WEB_DIR = Path(__file__).resolve().parent.parent / "web"

# Explicit types: Python's own table lacks `.mjs` on 3.11, and a module script served as
# anything but JavaScript is refused by the browser.
CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".mjs": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
    ".json": "application/json",
    ".txt": "text/plain; charset=utf-8",
}

# The page only talks to its own origin, except LiveKit's server (its URL comes from the match,
# so any ws/wss/https origin), and shows camera streams (blob:/mediastream:).
CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data: blob:",
        "media-src 'self' blob: mediastream:",
        "connect-src 'self' ws: wss: https:",
        "frame-ancestors 'none'",
        "base-uri 'none'",
        "form-action 'none'",
    ]
)

COMMON_HEADERS = {
    "cache-control": "no-cache",
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
}


def _with_headers(response: Response, suffix: str) -> Response:
    if response.status_code in (200, 206):
        response.headers["content-type"] = CONTENT_TYPES[suffix]
    response.headers.update(COMMON_HEADERS)
    return response


class WebFiles(StaticFiles):
    """StaticFiles (ETag, 304, HEAD, no path escapes) limited to the page's own file types."""

    async def get_response(self, path: str, scope: Scope) -> Response:
        suffix = PurePosixPath(path).suffix
        if suffix not in CONTENT_TYPES:
            return Response("Not Found", status_code=404, headers=COMMON_HEADERS)
        return _with_headers(await super().get_response(path, scope), suffix)


async def index(request: Request) -> Response:
    response = FileResponse(WEB_DIR / "index.html")
    response.headers["content-security-policy"] = CONTENT_SECURITY_POLICY
    response.headers["permissions-policy"] = "camera=(self), microphone=(self)"
    return _with_headers(response, ".html")


ROUTES: list[BaseRoute] = [
    Route("/", index, methods=["GET", "HEAD"]),
    Mount("/static", app=WebFiles(directory=WEB_DIR), name="static"),
]
