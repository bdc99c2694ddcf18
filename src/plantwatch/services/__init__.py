"""Use cases. They receive ports (domain Protocols) as arguments and never build adapters."""
