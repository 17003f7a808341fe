"""The development kit: fake providers, the demo, embedded Redis and a local fleet.

Not part of the product: installed by the `[dev]` extra, absent from the production image.
"""
