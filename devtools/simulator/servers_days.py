"""Serving a living street (``days.py``) as it was at the end of one day, and moving to another day.

The grid and IoT servers read the street's cumulative files and hide what is later than the day served
(``GridServer(day=...)``, ``IotServer(day=...)``). The registry and the civil-affairs folder are read
directly by the connectors, so the day's copies are laid out under ``OUT/live/``: ``live/registry/rrs.sqlite``
(replaced atomically) and ``live/civil/`` (files added and removed to match the day). A configuration
for the street points at ``OUT/live`` (``demo.write_config(street=OUT / "live", ...)``).

``islandbridge serve OUT --day D`` writes ``D`` to ``OUT/live/day`` and re-reads that file every second:
writing another day into it (``echo 2026-11-22 > OUT/live/day``) moves every system to that day.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
from pathlib import Path
from typing import Self

from islandbridge.devtools.simulator.days import day_dir, read_days
from islandbridge.devtools.simulator.servers_grid import GridServer
from islandbridge.devtools.simulator.servers_iot import IotServer


class LivingStreet:
    """Both servers and the ``live/`` folder of a living street, at one day; a context manager.

    Example::

        with LivingStreet(out, day=dt.date(2026, 11, 20), client_id="cid", client_secret="s", api_key="k") as s:
            write_config(cfg, street=s.live, grid_url=s.grid.base_url, iot_url=s.iot.base_url)
            ...  # sync the first day
            s.set_day(dt.date(2026, 11, 21))
    """

    def __init__(
        self,
        root: Path,
        *,
        day: dt.date,
        client_id: str,
        client_secret: str,
        api_key: str,
        grid_port: int = 0,
        iot_port: int = 0,
        host: str = "127.0.0.1",
        grid_rate_limit_per_s: float | None = 50,
    ) -> None:
        self.root = Path(root)
        self.days = [dt.date.fromisoformat(d) for d in read_days(self.root)["days"]]
        self._check(day)
        self.live = self.root / "live"
        self.day = day
        self._materialise(day)
        self.grid = GridServer(
            self.root / "grid",
            client_id=client_id,
            client_secret=client_secret,
            host=host,
            port=grid_port,
            day=day,
            rate_limit_per_s=grid_rate_limit_per_s,
        )
        self.iot = IotServer(self.root / "iot", api_key=api_key, host=host, port=iot_port, day=day)

    def _check(self, day: dt.date) -> None:
        if day not in self.days:
            raise ValueError(f"{self.root} has no day {day}; its days are {self.days[0]}..{self.days[-1]}")

    def start(self) -> Self:
        self.grid.start()
        try:
            self.iot.start()
        except BaseException:
            self.grid.stop()
            raise
        return self

    def stop(self) -> None:
        self.iot.stop()
        self.grid.stop()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def set_day(self, day: dt.date) -> None:
        """Serve ``day`` from now on: the registry file, the roster folder and both APIs."""
        self._check(day)
        self._materialise(day)
        self.grid.set_day(day)
        self.iot.set_day(day)
        self.day = day

    def _materialise(self, day: dt.date) -> None:
        source = day_dir(self.root, day)
        registry = self.live / "registry"
        registry.mkdir(parents=True, exist_ok=True)
        staged = registry / ".rrs.sqlite.part"
        shutil.copyfile(source / "registry" / "rrs.sqlite", staged)
        os.replace(staged, registry / "rrs.sqlite")
        civil = self.live / "civil"
        civil.mkdir(parents=True, exist_ok=True)
        wanted = {f.name for f in (source / "civil").iterdir()}
        for f in civil.iterdir():
            if f.name not in wanted:
                f.unlink()
        for name in sorted(wanted):
            target = civil / name
            if not target.exists() or target.read_bytes() != (source / "civil" / name).read_bytes():
                shutil.copyfile(source / "civil" / name, civil / f".{name}.part")
                os.replace(civil / f".{name}.part", target)
        (self.live / "day").write_text(day.isoformat() + "\n", encoding="utf-8")

    def follow_day_file(self) -> bool:
        """Switch to the day written in ``live/day`` if it changed; True when it did. A day the street
        lacks is reported once by raising ``ValueError``, and the file is put back to the served day."""
        try:
            text = (self.live / "day").read_text(encoding="utf-8").strip()
        except FileNotFoundError:
            return False
        if text == self.day.isoformat():
            return False
        try:
            self.set_day(dt.date.fromisoformat(text))
        except ValueError:
            (self.live / "day").write_text(self.day.isoformat() + "\n", encoding="utf-8")
            raise
        return True
