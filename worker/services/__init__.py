"""Services: tracking, polling, scheduling and the event relay, over the adapters."""
