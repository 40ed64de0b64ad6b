"""One nearest-rank percentile (``bench.report.percentile``) for the HTTP, tenant and producer
rows."""

from __future__ import annotations

from bench import http_api, http_tenants, report, stock_producer


def test_the_rows_share_one_percentile() -> None:
    values = [float(n) for n in range(1, 101)]
    assert report.percentile(values, 0.5) == 51.0  # round(0.5 * 99) = 50: the 51st
    assert report.percentile(values, 0.99) == 99.0
    assert report.percentile([], 0.99) == 0.0
    assert http_api.percentile is report.percentile
    assert http_tenants.percentile is report.percentile
    assert stock_producer._percentile_ms([0.001, 0.002], 1.0) == 2.0
