"""The development kit: fake providers, the demo, embedded Redis and PostgreSQL, a local fleet.

Not part of the product: installed by the `[dev]` extra, absent from the production image.
"""
