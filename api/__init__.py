"""The recommendation HTTP API (FastAPI): ``api.app:create_app``."""
