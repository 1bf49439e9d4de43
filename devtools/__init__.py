"""Developer tooling, apart from the product: the runtime never imports this package.

Owns the street simulator and its loopback servers (`simulator`), the demo that runs a simulated street
through Airflow (`demo`), the benchmarks (`bench`, `quality_bench`, `normalize_bench`), the scoring of
linkage and reports against a simulated truth (`linkage`, `reports_eval`) and the leak scanner
(`leakscan`). Its commands join the ``islandbridge`` command line through the
``islandbridge.commands`` entry point (`cli`). May import anything in the product.
"""
