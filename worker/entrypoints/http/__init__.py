"""The HTTP service (`kyc-poller serve`): provider webhooks, the app API, health, metrics, docs.

aiohttp.web on one event loop per process; blocking work (SQL, the broker) runs in
threads. No state another replica needs lives in the process: rate buckets, replay
marks, collapse keys, stream leases and token revocations are in Redis, the rest in
the database, so the service scales out behind any load balancer.

    context   the objects a service process holds (`Ingress`)
    app       the application: routes, middlewares, start and stop
    webhooks  POST /webhooks/{provider}
    api       /api/v1/...: track, status, history, poll-now (bearer tokens, scopes)
    health    /livez (the process answers), /healthz (database and Redis too)
    docs      /openapi.json and /docs (works offline)
"""
