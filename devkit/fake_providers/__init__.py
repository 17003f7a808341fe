"""Local fakes of the four providers' status endpoints over real HTTP (stdlib only).

`fake_providers.server.FakeProviders` runs them in-process; `kyc-fake-providers`
(or `python -m devkit.fake_providers`) runs them as a separate process, scripted
through the admin API under /_fake/.
"""
