"""The dashboard: an async Starlette app (``lightml gui``) and its single-page UI."""
