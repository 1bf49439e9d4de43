"""islandbridge: break the information islands of a smart community.

The concerns live in sibling packages, in the order data flows: ``connectors`` → ``landing`` →
``quality`` → ``privacy`` → ``identity`` → ``warehouse`` → ``delivery``, over ``schemas``,
``transforms.normalize`` and ``storage``; ``pipeline`` sequences the steps for the CLI (``cli``) and the
DAG. This package itself holds only the frame: the CLI, the pipeline's steps, configuration
(``config``), the error tree (``errors``), storage helpers (``storage``) and ``perf``. Developer tooling
is ``islandbridge.devtools``, which the runtime never imports. See docs/architecture.md.
"""

__version__ = "0.1.0"
