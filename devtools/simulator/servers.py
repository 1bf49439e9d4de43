"""The simulated vendor platforms as real HTTP servers on loopback: the grid platform (SPEC B) and the
IoT platform (SPEC D), serving a street written by the generator.

Tests start one per test (``with GridServer(...) as grid: ...``); ``islandbridge serve`` runs both with
``serve_forever``. Each quirk of the vendors can be switched on from a test: see ``GridServer`` and
``IotServer``, and docs/simulator-servers.md.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from collections.abc import Callable
from pathlib import Path

from islandbridge.devtools.simulator.servers_common import LoggedRequest, PortUnavailable, SimulatedServer
from islandbridge.devtools.simulator.servers_grid import GridServer
from islandbridge.devtools.simulator.servers_iot import IotServer

__all__ = [
    "GridServer",
    "IotServer",
    "LoggedRequest",
    "PortUnavailable",
    "SimulatedServer",
    "serve_days",
    "serve_forever",
]

logger = logging.getLogger(__name__)


def serve_forever(
    data_dir: Path,
    *,
    grid_port: int,
    iot_port: int,
    client_id: str,
    client_secret: str,
    api_key: str,
    host: str = "127.0.0.1",
    on_ready: Callable[[GridServer, IotServer], None] | None = None,
    stop: threading.Event | None = None,
) -> None:
    """Serve ``data_dir/grid`` and ``data_dir/iot`` on the given ports until Ctrl-C (or ``stop`` is set).

    ``on_ready`` is called with both running servers, e.g. for the CLI to print their URLs; a port that
    cannot be listened on raises ``PortUnavailable`` before it. Example::

        serve_forever(Path("var/street"), grid_port=8081, iot_port=8082,
                      client_id="cid", client_secret="secret", api_key="key")
    """
    data_dir = Path(data_dir)
    grid = GridServer(
        data_dir / "grid", client_id=client_id, client_secret=client_secret, host=host, port=grid_port
    )
    iot = IotServer(data_dir / "iot", api_key=api_key, host=host, port=iot_port)
    with grid, iot:
        logger.info("grid platform at %s/api/v2, IoT platform at %s/iot/v1", grid.base_url, iot.base_url)
        if on_ready is not None:
            on_ready(grid, iot)
        try:
            (stop or threading.Event()).wait()
        except KeyboardInterrupt:
            logger.info("simulated platforms stopped")


def serve_days(
    street: Path,
    *,
    day,
    grid_port: int,
    iot_port: int,
    client_id: str,
    client_secret: str,
    api_key: str,
    host: str = "127.0.0.1",
    on_ready: Callable[[GridServer, IotServer], None] | None = None,
    stop: threading.Event | None = None,
    poll_s: float = 1.0,
) -> None:
    """Serve a living street (``simulate --days``) at ``day`` (``None``: its first) until Ctrl-C or
    ``stop``; every ``poll_s`` seconds ``street/live/day`` is re-read and a new day in it is served.
    ``on_ready`` is called as in ``serve_forever``, once both servers listen."""
    from islandbridge.devtools.simulator.days import read_days
    from islandbridge.devtools.simulator.servers_days import LivingStreet

    first = dt.date.fromisoformat(read_days(street)["days"][0])
    living = LivingStreet(
        street,
        day=day or first,
        client_id=client_id,
        client_secret=client_secret,
        api_key=api_key,
        grid_port=grid_port,
        iot_port=iot_port,
        host=host,
    )
    stop = stop or threading.Event()
    with living:
        logger.info("living street at %s: day %s", street, living.day)
        if on_ready is not None:
            on_ready(living.grid, living.iot)
        try:
            while not stop.wait(poll_s):
                try:
                    if living.follow_day_file():
                        logger.info("now serving day %s", living.day)
                except ValueError as exc:
                    logger.warning("%s", exc)
        except KeyboardInterrupt:
            logger.info("simulated platforms stopped")
