"""The event store: the event vocabulary and its schemas, connections and format checks,
the write transaction and the single writer per file, replay and verify.

Nothing here knows a command; it appends what it is given and applies the projections.
"""
