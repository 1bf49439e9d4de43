"""The tables' suites as Great Expectations 1.x suites, and validating frames with them.

Each check declared in ``schemas/raw_*.yml`` becomes one GX expectation (``expectation``); a table's
suite is ``build_suite``. GX runs on pandas frames (never on the SQL datasource over DuckDB, which was
seen to raise inside every expectation while reporting only ``success=False``), in one ephemeral
context per process, with a result format that never carries unexpected *values*: results hold counts,
and the gate takes record keys from DuckDB.

An expectation that raises (its ``exception_info`` is set) is a broken check, not bad data:
``validate`` raises ``QualityCheckBrokenError`` naming it, and the run stops.

``great_expectations`` takes seconds to import, so it is imported inside these functions only.

Example::

    suite = build_suite(table, table.suite, CheckContext(as_of))
    results = validate(frame, list(suite.expectations), where="registry.t_jm")
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import lru_cache
from typing import Any

import pyarrow as pa

from islandbridge.logs import quiet_third_party
from islandbridge.quality.errors import QualityCheckBrokenError
from islandbridge.quality.rowchecks import (
    DERIVED_KINDS,
    CheckContext,
    CheckCount,
    check_bounds,
    derived_name,
)
from islandbridge.schemas import Check, TableSchema

# Counts only: no unexpected values, no rows, no value samples (PII columns are validated here too).
RESULT_FORMAT = {
    "result_format": "BASIC",
    "partial_unexpected_count": 0,
    "exclude_unexpected_values": True,
    "include_unexpected_rows": False,
    "return_unexpected_index_query": False,
}
SAFE_RESULT_KEYS = ("element_count", "unexpected_count", "unexpected_percent", "missing_count")


@lru_cache(maxsize=1)
def _batch_definition():
    """One ephemeral GX context per process, with a whole-dataframe batch definition."""
    quiet_third_party()  # before GX's first import: it logs ~200 "Skipping registering function" lines
    import great_expectations as gx
    from great_expectations.data_context.types.base import (
        DataContextConfig,
        InMemoryStoreBackendDefaults,
        ProgressBarsConfig,
    )

    config = DataContextConfig(
        progress_bars=ProgressBarsConfig(globally=False, metric_calculations=False),
        analytics_enabled=False,
        store_backend_defaults=InMemoryStoreBackendDefaults(),
    )
    context = gx.get_context(mode="ephemeral", project_config=config)
    asset = context.data_sources.add_pandas("islandbridge_landing").add_dataframe_asset("frames")
    return asset.add_batch_definition_whole_dataframe("whole_frame")


def expectation(check: Check, ctx: CheckContext, *, part: str | None = None):
    """The GX expectation of one row-level check (see ``rowchecks`` for the matching SQL)."""
    import great_expectations.expectations as gxe

    p, kind = check.params, check.kind
    common: dict[str, Any] = {"meta": {"check": check.id, **({"part": part} if part else {})}}
    if check.mostly is not None:
        common["mostly"] = check.mostly
    if kind == "not_null":
        return gxe.ExpectColumnValuesToNotBeNull(column=check.column, **common)
    if kind == "unique" and len(p["columns"]) == 1:
        return gxe.ExpectColumnValuesToBeUnique(column=p["columns"][0], **common)
    if kind == "unique":
        return gxe.ExpectCompoundColumnsToBeUnique(
            column_list=list(p["columns"]), ignore_row_if="all_values_are_missing", **common
        )
    if kind == "in_set":
        return gxe.ExpectColumnValuesToBeInSet(column=check.column, value_set=list(p["values"]), **common)
    if kind == "regex":
        return gxe.ExpectColumnValuesToMatchRegex(column=check.column, regex=p["pattern"], **common)
    if kind == "pair_equal":
        a, b = p["columns"]
        return gxe.ExpectColumnPairValuesToBeEqual(
            column_A=a, column_B=b, ignore_row_if="both_values_are_missing", **common
        )
    if kind in ("date_between", "epoch_ms_between", "number_between"):
        low, high = check_bounds(check, ctx)
        return gxe.ExpectColumnValuesToBeBetween(
            column=derived_name(check),
            min_value=low,
            max_value=high,
            strict_max=bool(p.get("strict_max")),
            **common,
        )
    if kind in DERIVED_KINDS:  # date_format, id_valid, phone_valid, no_identifier, exists_in: a boolean
        return gxe.ExpectColumnValuesToBeInSet(column=derived_name(check), value_set=[True], **common)
    raise QualityCheckBrokenError(f"check {check.id!r}: kind {kind!r} has no GX expectation")


def build_suite(table: TableSchema, checks: Sequence[Check], ctx: CheckContext):
    """The GX suite of a table's row-level checks (table-level checks are validated on their own frames)."""
    import great_expectations as gx

    _batch_definition()  # suites need an active context
    suite = gx.ExpectationSuite(name=f"{table.layer}.{table.connector}.{table.stream}")
    for check in checks:
        if check.is_row_level:
            suite.add_expectation(expectation(check, ctx))
    return suite


# Table-level checks of every stream of a run are validated in one GX call each (a GX call costs
# ~0.1 s however small its frame): one frame row per stream (or file), and per stream an expectation
# restricted to its rows with a row condition on ``stream_id``.


def _for_stream(stream_id: str | None, check_id: str, part: str | None) -> dict[str, Any]:
    meta = {
        "check": check_id,
        **({"part": part} if part else {}),
        **({"stream": stream_id} if stream_id else {}),
    }
    if stream_id is None:
        return {"meta": meta}
    from great_expectations.expectations.row_conditions import Column

    return {"meta": meta, "row_condition": Column("stream_id") == stream_id}


def columns_expectation(stream_id: str, declared: Sequence[str]):
    """On a frame of (stream_id, column) rows: the stream's landed columns are exactly ``declared``."""
    import great_expectations.expectations as gxe

    return gxe.ExpectColumnDistinctValuesToEqualSet(
        column="column", value_set=list(declared), **_for_stream(stream_id, "columns_match", None)
    )


def between_expectation(
    check_id: str,
    column: str,
    low: float | None,
    high: float | None = None,
    part: str | None = None,
    stream_id: str | None = None,
):
    import great_expectations.expectations as gxe

    return gxe.ExpectColumnValuesToBeBetween(
        column=column, min_value=low, max_value=high, **_for_stream(stream_id, check_id, part)
    )


def pair_equal_expectation(check_id: str, a: str, b: str, part: str, stream_id: str | None = None):
    import great_expectations.expectations as gxe

    return gxe.ExpectColumnPairValuesToBeEqual(
        column_A=a,
        column_B=b,
        ignore_row_if="either_value_is_missing",
        **_for_stream(stream_id, check_id, part),
    )


def aggregated(checks: Sequence[Check], counts: Mapping[str, CheckCount]) -> tuple[pa.Table, list]:
    """For streams too large for GX's pandas engine: one row of per-check success ratios, computed by
    DuckDB over every row, and one GX expectation per check on its ratio (``mostly``, or 1.0)."""
    row_checks = [c for c in checks if c.is_row_level]
    frame = pa.table({c.id: [counts[c.id].success_ratio] for c in row_checks})
    return frame, [
        between_expectation(c.id, c.id, c.mostly if c.mostly is not None else 1.0, None) for c in row_checks
    ]


def validate(frame, expectations: Sequence, where: str) -> list[dict[str, Any]]:
    """Validate a frame (pandas or Arrow) with expectations; one dict per expectation: ``check``,
    ``part``, ``gx_type``, ``success``, ``result`` (counts only), ``observed_value``.

    Raises ``QualityCheckBrokenError`` naming the first expectation that raised.
    """
    import great_expectations as gx

    batch_definition = _batch_definition()  # suites need an active context
    if isinstance(frame, pa.Table):
        frame = frame.to_pandas()
    suite = gx.ExpectationSuite(name=f"islandbridge.{where}")
    for e in expectations:
        suite.add_expectation(e)
    batch = batch_definition.get_batch(batch_parameters={"dataframe": frame})
    results = batch.validate(suite, result_format=dict(RESULT_FORMAT))
    return [_one(r, where) for r in results.results]


def _one(r, where: str) -> dict[str, Any]:
    config = r.expectation_config
    meta = dict(config.meta or {})
    error = raised_exception(r.exception_info)
    if error is not None:
        raise QualityCheckBrokenError(
            f"quality check {where}.{meta.get('check', '?')} ({config.type}) raised instead of validating: "
            f"{error[:300]}. This is a broken check, not bad data: fix its definition in schemas/ and run the "
            "gate again"
        )
    result = dict(r.result or {})
    return {
        "check": meta.get("check"),
        "part": meta.get("part"),
        "stream": meta.get("stream"),
        "gx_type": config.type,
        "success": bool(r.success),
        "result": {k: result[k] for k in SAFE_RESULT_KEYS if k in result},
        "observed_value": result.get("observed_value"),
    }


def raised_exception(info: Any) -> str | None:
    """The message of an expectation's exception, if it raised. GX 1.x reports it either at the top
    level (``raised_exception``) or per failing metric (a dict of such dicts)."""
    if not isinstance(info, Mapping):
        return None
    if info.get("raised_exception"):
        return str(info.get("exception_message") or "an exception without a message")
    for value in info.values():
        if isinstance(value, Mapping) and value.get("raised_exception"):
            return str(value.get("exception_message") or "an exception without a message")
    return None
