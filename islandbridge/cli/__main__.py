"""``python -m islandbridge.cli``: the same as the ``islandbridge`` command."""

from islandbridge.cli import main

raise SystemExit(main())
