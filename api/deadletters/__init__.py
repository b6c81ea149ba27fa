"""Dead letters: webhook deliveries and scheduled runs that could not become a (finished) run.

See :mod:`api.deadletters.service` and docs/triggers.md ("Dead letters").
"""
