"""islandbridge: break the information islands of a smart community.

The pipeline's stages live in sibling packages, in the order data flows:
``islandbridge.connectors`` → ``islandbridge.transforms`` → ``islandbridge.warehouse``, with the
canonical table definitions in ``islandbridge.schemas`` and a simulated street in
``islandbridge.devtools.simulator``. ``islandbridge.pipeline`` sequences the steps for both the CLI and the DAG.
"""

__version__ = "0.1.0"
