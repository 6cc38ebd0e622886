"""The staff console: server-rendered pages under ``/ui`` (Jinja2, htmx 2 vendored, SVG charts).

A third face beside the JSON API and the CLI: it computes nothing of its own and calls the same
functions (``recsys.serving.recommend``, the model registry, ``recsys.storage``). ``api.app``
mounts :data:`router`; nothing else imports the console.
"""

from console.router import router

__all__ = ["router"]
