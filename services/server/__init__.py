"""The team server's HTTP API (T1, T4): aiohttp in the service's own event loop, a thin layer
over the same `services.api.Service` operations the desktop and the command line call locally,
so no rule is written twice. Versioned under `/api/v1/`; `/healthz` and `/readyz` for the
process manager and the load balancer.
"""
