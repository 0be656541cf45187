"""Answers, never writes: name resolution, listings, history, comparisons and statistics
over the read tables.
"""
