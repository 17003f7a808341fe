"""/openapi.json and /docs: the API's document, and a page that renders it with no network
(no script or stylesheet from a CDN: the page is built here from the document)."""

from __future__ import annotations

import html
import json

from aiohttp import web

from worker.entrypoints.http.common import ROUTE
from worker.entrypoints.http.openapi import document

_DOCUMENT = json.dumps(document(), indent=2, sort_keys=True).encode()


async def openapi(request: web.Request) -> web.Response:
    request[ROUTE] = "docs"
    return web.Response(body=_DOCUMENT, content_type="application/json")


def render_page() -> str:
    spec = document()
    rows = []
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            answers = ", ".join(
                f"{code} {html.escape(item['description'])}"
                for code, item in operation["responses"].items()
            )
            rows.append(
                f"<tr><td><code>{method.upper()}</code></td><td><code>{html.escape(path)}"
                f"</code></td><td>{html.escape(operation['summary'])}</td><td>{answers}</td></tr>"
            )
    description = html.escape(spec["info"]["description"])
    return (
        "<!doctype html><html><head><meta charset='utf-8'><title>kyc-poller API</title>"
        "<style>body{font-family:sans-serif;margin:2em}td{vertical-align:top;padding:4px 8px;"
        "border-bottom:1px solid #ddd}pre{background:#f6f6f6;padding:1em}</style></head><body>"
        f"<h1>kyc-poller API</h1><p>{description}</p>"
        "<table><tr><th>method</th><th>path</th><th>what</th><th>answers</th></tr>"
        + "".join(rows)
        + "</table><h2>OpenAPI document</h2><p><a href='/openapi.json'>/openapi.json</a></p>"
        f"<pre>{html.escape(_DOCUMENT.decode())}</pre></body></html>"
    )


_PAGE = render_page().encode()


async def docs(request: web.Request) -> web.Response:
    request[ROUTE] = "docs"
    return web.Response(body=_PAGE, content_type="text/html")
