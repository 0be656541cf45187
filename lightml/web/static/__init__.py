"""The dashboard page: HTML, CSS and JavaScript written for LightML (no third-party code)."""
