"""``bookclub serve`` (the HTTP API under uvicorn) and ``bookclub apikeys …``."""

from __future__ import annotations

import copy
import os
import shutil
from typing import Any

import typer
from rich.table import Table

from bookclub_cli.common import cli_errors, console, err_console, load_settings, open_engine
from recsys.errors import ConfigurationError
from recsys.storage.apikeys import SCOPES, create_key, list_keys, revoke_key
from recsys.storage.db import upgrade

WORKER_HEALTHCHECK_SECONDS = 60

apikeys_app = typer.Typer(help="API keys: create, list, revoke.", no_args_is_help=True)


def _log_config() -> dict[str, Any]:
    """uvicorn's logging, plus our access log (method, route template, status: no query)."""
    from uvicorn.config import LOGGING_CONFIG

    config: dict[str, Any] = copy.deepcopy(LOGGING_CONFIG)
    config["loggers"]["bookclub"] = {"handlers": ["default"], "level": "INFO", "propagate": False}
    return config


@cli_errors
def serve(
    host: str | None = typer.Option(None, "--host", help="listen address [settings: 127.0.0.1]"),
    port: int | None = typer.Option(None, "--port", help="listen port [settings: 8000]"),
    workers: int | None = typer.Option(None, "--workers", min=1, help="worker processes"),
    open_demo: bool = typer.Option(
        False,
        "--open-demo",
        help="read routes without an API key (demo only; admin and member editions still need one)",
    ),
) -> None:
    """Serve the recommendation API with uvicorn (uvloop + httptools)."""
    import uvicorn

    settings = load_settings()
    host = host or settings.api.host
    port = port or settings.api.port
    workers = workers or settings.api.workers
    if open_demo:
        # workers build their settings from the environment (factory mode)
        os.environ["BOOKCLUB_API__OPEN_DEMO"] = "true"
        err_console.print(
            "[yellow]open demo mode: read routes need no API key (member editions and admin still do)[/]"
        )
    if workers > 1 and not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        metrics_dir = (settings.data_dir / "run" / "prometheus").resolve()
        shutil.rmtree(metrics_dir, ignore_errors=True)  # wiped before each start, as required
        metrics_dir.mkdir(parents=True)
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(metrics_dir)
    try:
        upgrade(open_engine(settings))
    except Exception as exc:  # serve anyway: /readyz reports the database until it answers
        err_console.print(
            f"[yellow]database not upgraded ({type(exc).__name__}); serving anyway[/]"
        )
    console.print(f"serving on http://{host}:{port} with {workers} worker(s)")
    uvicorn.run(
        "api.app:create_app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        loop="uvloop",
        http="api.http_protocol:HttpToolsProtocol",  # httptools; an answer in one write
        access_log=False,  # ours logs the route template only: no query strings, no keys
        log_config=_log_config(),
        server_header=False,
        # a worker answers the supervisor's health pings only once it has re-imported this
        # CLI (spawn): on a busy machine that takes more than uvicorn's 5 s, and the worker
        # was killed and restarted over and over before it could serve
        timeout_worker_healthcheck=WORKER_HEALTHCHECK_SECONDS,
    )


@apikeys_app.command("create")
@cli_errors
def apikeys_create(
    scope: str = typer.Option(
        ..., "--scope", help="read | editions | admin (editions: read + member editions, names, addresses)"
    ),
    label: str | None = typer.Option(None, "--label", help="who or what the key is for"),
) -> None:
    """Create a key and print it once: it is stored only as a hash."""
    if scope not in SCOPES:
        raise ConfigurationError(f"--scope must be one of {', '.join(SCOPES)}, not {scope!r}")
    engine = open_engine(load_settings())
    upgrade(engine)
    with engine.begin() as connection:
        key, info = create_key(connection, scope, label)
    err_console.print(f"created {info.scope} key {info.prefix}; it is shown only this once:")
    print(key)


@apikeys_app.command("list")
@cli_errors
def apikeys_list() -> None:
    """The keys by prefix, scope and label (never the keys themselves)."""
    engine = open_engine(load_settings())
    with engine.connect() as connection:
        keys = list_keys(connection)
    table = Table("prefix", "scope", "label", "created", "revoked")
    for info in keys:
        table.add_row(
            info.prefix,
            info.scope,
            info.label or "",
            info.created_at.isoformat(timespec="seconds"),
            info.revoked_at.isoformat(timespec="seconds") if info.revoked_at else "",
        )
    console.print(table)
    console.print(f"{len(keys)} key(s), {sum(k.revoked_at is None for k in keys)} active")


@apikeys_app.command("revoke")
@cli_errors
def apikeys_revoke(prefix: str = typer.Argument(..., help="the key's prefix (see list)")) -> None:
    """Revoke a key; running servers stop accepting it within api.key_cache_seconds."""
    engine = open_engine(load_settings())
    with engine.begin() as connection:
        info = revoke_key(connection, prefix)
    console.print(f"revoked {info.scope} key {info.prefix} ({info.label or 'no label'})")


def register(app: typer.Typer) -> None:
    """Add this module's commands to ``app``."""
    app.command("serve")(serve)
    app.add_typer(apikeys_app, name="apikeys")
