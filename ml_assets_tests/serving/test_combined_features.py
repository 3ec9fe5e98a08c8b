"""Concurrent requests' features computed in shared statements, on the real published snapshot:
the same values as each request alone, and every caller its own rows or its own error."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pandas as pd

from ml_assets.layers.online import store
from ml_assets.layers.online.compute import OnlineFeatures, RequestError
from ml_assets_tests.serving.conftest import validated_rows


def test_combined_requests_match_each_alone_and_keep_their_errors(world) -> None:
    snapshot = store.current_snapshot("flights", world.home / "data" / "online")
    online = OnlineFeatures(world.spec, snapshot)
    rows = [r["row"] for r in validated_rows(world.home, limit=24)]
    alone = [online.compute([row]).frame() for row in rows]
    late = {**rows[0], "dep_time": "not a time"}
    # Requests: one row each, a two-row request, the same flight twice (joint keys collide), and
    # one the contract refuses.
    requests = [[row] for row in rows] + [rows[:2], [rows[5]], [late]]

    def call(request: list[dict]) -> pd.DataFrame | str:
        try:
            return online.compute_combined(request).frame()
        except RequestError as exc:
            return str(exc)

    with ThreadPoolExecutor(8) as pool:
        for _ in range(5):
            out = list(pool.map(call, requests * 4))
            for got, request in zip(out, requests * 4, strict=True):
                if request is requests[-1]:
                    assert isinstance(got, str) and "dep_time" in got
                    continue
                expected = pd.concat([alone[rows.index(r)] for r in request], ignore_index=True)
                pd.testing.assert_frame_equal(got, expected, check_exact=True)
    assert online._combiner.batches < online._combiner.items  # requests did share statements
