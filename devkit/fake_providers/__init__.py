"""Local fakes of the four providers' status endpoints over real HTTP.

`fake_providers.server.FakeProviders` runs them in-process; `kyc-fake-providers`
(or `python -m devkit.fake_providers`) runs them as a separate process, scripted
through the admin API under /_fake/. Every provider answer can be given a
latency (`--latency-ms`, PUT /_fake/latency). Two servers for the same app:
aiohttp (`--server aio`, the default) and the standard library's threaded one.
"""
