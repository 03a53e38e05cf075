"""The `pairline` command: `pairline serve` runs a node; `pairline migrate` the records schema.

Every setting of protocol.md §8 is also a `serve` flag named after its environment variable in
kebab case (`PAIRLINE_PORT` → `--pairline-port`); a flag wins over the environment.
"""

from __future__ import annotations

import os
from typing import Any

import click

from pairline.bench import bench_command
from pairline.settings import Settings


def _serve(**flags: Any) -> None:
    for field, env in Settings.env_names().items():
        value = flags.get(field)
        if value is not None:
            os.environ[env] = str(value)
    settings = Settings()
    run_server(settings)


def run_server(settings: Settings) -> None:
    import uvicorn

    from pairline.api.app import create_app
    from pairline.transport.native_ws import NativeWebSocket

    config = uvicorn.Config(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        loop="uvloop",
        http="httptools",
        ws=NativeWebSocket if settings.ws_impl == "native" else "websockets-sansio",
        ws_per_message_deflate=False,
        lifespan="on",
        log_config=None,
        access_log=False,
        server_header=False,
        # Clients get 1012 and a close handshake; one that never answers must not hold the
        # node's shutdown (or a rolling restart) forever.
        timeout_graceful_shutdown=10,
    )
    uvicorn.Server(config).run()


def _serve_command() -> click.Command:
    params: list[click.Parameter] = [
        click.Option(
            [f"--{env.lower().replace('_', '-')}", field],
            default=None,
            help=f"Sets {env}.",
            show_envvar=False,
        )
        for field, env in Settings.env_names().items()
    ]
    return click.Command(
        "serve",
        callback=_serve,
        params=params,
        help="Run a pairline node (settings: protocol.md §8).",
    )


@click.command("migrate")
@click.option(
    "--database-url",
    envvar="DATABASE_URL",
    default=None,
    help="The records database (default: DATABASE_URL, else sqlite:///pairline.db).",
)
@click.option("--down", "down_to", default=None, help="Downgrade to this revision (e.g. base).")
def migrate_command(database_url: str | None, down_to: str | None) -> None:
    """Bring the records database's schema up to date (nodes also do this at start)."""
    import asyncio

    from pairline.records.database import async_url
    from pairline.records.migrate import current, downgrade, upgrade

    url = async_url(database_url or Settings().database_url)

    async def run() -> str | None:
        if down_to is not None:
            await downgrade(url, down_to)
        else:
            await upgrade(url)
        return await current(url)

    click.echo(f"schema revision: {asyncio.run(run()) or 'none'}")


def cli() -> None:
    group = click.Group(
        "pairline", help="pairline: matchmaking for 1:1 random video and text chat."
    )
    group.add_command(_serve_command())
    group.add_command(migrate_command)
    group.add_command(bench_command)
    group()
