"""Decisions: validation, the commands that read state inside the write transaction and
turn a request into events (register, log metrics, delete / restore / prune, edits).
"""
