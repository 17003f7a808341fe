"""The webhook benchmark's anchor: a bare aiohttp.web endpoint doing only gu1's signature check.

`python -m devkit.bench.webhook_anchor --port N --secret S`: POST /webhooks/gu1 reads the
body, checks the HMAC-SHA256 hex in X-Webhook-Signature in constant time and answers 202
or 401. Nothing else: no parse, no Redis, no database. What the service costs above this
is what kyc-poller adds to the framework.
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import sys

from aiohttp import web


def make_app(secret: bytes) -> web.Application:
    async def receive(request: web.Request) -> web.Response:
        body = await request.read()
        given = request.headers.get("X-Webhook-Signature", "")
        expected = hmac.new(secret, body, hashlib.sha256).hexdigest()
        ok = hmac.compare_digest(given.encode(), expected.encode())
        return web.Response(status=202 if ok else 401)

    app = web.Application()
    app.router.add_post("/webhooks/gu1", receive)
    return app


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--secret", required=True)
    args = parser.parse_args(argv)
    web.run_app(
        make_app(args.secret.encode()), host=args.host, port=args.port, access_log=None, print=None
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
