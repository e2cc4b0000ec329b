"""The official Python qdrant-client (REST) against a real vecstash server.

Every result is checked against a numpy brute force over the same seeded vectors. vecstash stores
int8 codes by default and rescoring uses the float32 originals, so results are expected to be exact
or nearly so: recall@10 >= 0.9 and scores within 1e-2.
"""

from __future__ import annotations

import importlib.metadata
import threading
import time
import uuid
import warnings
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Callable

import httpx
import numpy as np
import pytest
from pydantic import TypeAdapter
from qdrant_client import QdrantClient, models
from qdrant_client.common.version_check import get_server_version, is_compatible
from qdrant_client.http.exceptions import UnexpectedResponse

from conftest import API_KEY, READ_ONLY_API_KEY, _start_server, _stop_server

DIM = 32
N = 400
K = 10
SEED = 20240611
RECALL_MIN = 0.9
SCORE_ATOL = 1e-2
GROUPS = ("a", "b", "c")


# --------------------------------------------------------------------------------------------------
# helpers


def make_client(url: str, **kwargs: Any) -> QdrantClient:
    """A REST client. With check_compatibility (the default) the client's background version check
    (GET /) is waited for, and any warning it gives (version unreadable or incompatible) fails the test."""
    kwargs.setdefault("check_compatibility", True)
    before = set(threading.enumerate())
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        client = QdrantClient(url=url, prefer_grpc=False, timeout=30, **kwargs)
        for t in set(threading.enumerate()) - before:
            if "_check_compatibility" in t.name:  # Thread(target=...) names it "Thread-N (_check_compatibility)"
                t.join(timeout=30)
    problems = [str(w.message) for w in caught if "compatib" in str(w.message)]
    assert not problems, f"qdrant-client version check against {url}: {problems}"
    return client


def make_vectors(n: int, dim: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, dim)).astype(np.float32)


def make_payload(i: int) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "group": GROUPS[i % 3],
        "n": i,
        "even": i % 2 == 0,
        "weight": (i % 10) / 10.0,
        "tags": [f"t{i % 4}", "all"],
        "metadata": {"source": f"src{i % 5}", "page": i % 7},
    }
    # "opt" is null, missing, an empty array or a value: for is_empty / is_null.
    if i % 4 == 0:
        payload["opt"] = None
    elif i % 4 == 2:
        payload["opt"] = []
    elif i % 4 == 3:
        payload["opt"] = "x"
    return payload


def exact_scores(x: np.ndarray, q: np.ndarray, distance: models.Distance) -> np.ndarray:
    """Qdrant's score for every row: cosine similarity, dot product, or Euclidean distance."""
    x64 = x.astype(np.float64)
    q64 = np.asarray(q, dtype=np.float64)
    if distance == models.Distance.COSINE:
        xn = x64 / np.linalg.norm(x64, axis=1, keepdims=True)
        return xn @ (q64 / np.linalg.norm(q64))
    if distance == models.Distance.DOT:
        return x64 @ q64
    if distance == models.Distance.EUCLID:
        return np.linalg.norm(x64 - q64, axis=1)
    raise AssertionError(distance)


def exact_top(
    x: np.ndarray, q: np.ndarray, distance: models.Distance, k: int, mask: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Row indices of the exact top-k (best first) and all rows' scores."""
    scores = exact_scores(x, q, distance)
    key = scores if distance == models.Distance.EUCLID else -scores
    key = key.copy()
    if mask is not None:
        key[~mask] = np.inf
    order = np.argsort(key, kind="stable")
    if mask is not None:
        order = order[mask[order]]
    return order[:k], scores


def check_ranked(
    points: list[Any],
    expected_ids: list[Any],
    score_of: dict[Any, float],
    distance: models.Distance,
    what: str,
) -> None:
    """Recall against the exact top-k, scores close to exact, best-first order."""
    got = [p.id for p in points]
    assert len(got) == len(expected_ids), f"{what}: got {len(got)} points, expected {len(expected_ids)}"
    assert len(set(got)) == len(got), f"{what}: duplicate ids {got}"
    if expected_ids:
        recall = len(set(got) & set(expected_ids)) / len(expected_ids)
        assert recall >= RECALL_MIN, f"{what}: recall {recall:.2f} < {RECALL_MIN}; got {got}, exact {expected_ids}"
    for p in points:
        assert p.id in score_of, f"{what}: unknown id {p.id!r}"
        assert abs(p.score - score_of[p.id]) <= SCORE_ATOL, (
            f"{what}: id {p.id} score {p.score} vs exact {score_of[p.id]}"
        )
    scores = [p.score for p in points]
    if distance == models.Distance.EUCLID:
        assert scores == sorted(scores), f"{what}: Euclid scores not ascending: {scores}"
    else:
        assert scores == sorted(scores, reverse=True), f"{what}: scores not descending: {scores}"


def expect_error(status: int | tuple[int, ...], fn: Callable[[], Any]) -> UnexpectedResponse:
    statuses = (status,) if isinstance(status, int) else status
    with pytest.raises(UnexpectedResponse) as info:
        fn()
    err = info.value
    assert err.status_code in statuses, f"expected HTTP {statuses}, got {err.status_code}: {err.content!r}"
    body = err.structured()
    assert isinstance(body.get("status"), dict) and isinstance(body["status"].get("error"), str), (
        f"error body is not {{'status': {{'error': msg}}, 'time': ..}}: {err.content!r}"
    )
    assert isinstance(body.get("time"), (int, float)), f"error body lacks a numeric time: {err.content!r}"
    return err


def unique_name(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:8]}"


@dataclass
class Loaded:
    name: str
    x: np.ndarray
    distance: models.Distance
    ids: list[Any]
    payloads: list[dict[str, Any]] = field(default_factory=list)

    def score_map(self, q: np.ndarray) -> dict[Any, float]:
        s = exact_scores(self.x, q, self.distance)
        return {pid: float(s[i]) for i, pid in enumerate(self.ids)}

    def top_ids(self, q: np.ndarray, k: int = K, mask: np.ndarray | None = None) -> list[Any]:
        rows, _ = exact_top(self.x, q, self.distance, k, mask)
        return [self.ids[r] for r in rows]

    def mask(self, pred: Callable[[Any, dict[str, Any]], bool]) -> np.ndarray:
        return np.array([pred(pid, p) for pid, p in zip(self.ids, self.payloads)], dtype=bool)


def load_collection(
    client: QdrantClient, name: str, dim: int, distance: models.Distance, n: int, seed: int
) -> Loaded:
    assert client.create_collection(name, vectors_config=models.VectorParams(size=dim, distance=distance)) is True
    x = make_vectors(n, dim, seed)
    payloads = [make_payload(i) for i in range(n)]
    for start in range(0, n, 128):
        stop = min(n, start + 128)
        result = client.upsert(
            name,
            points=[
                models.PointStruct(id=i, vector=x[i].tolist(), payload=payloads[i]) for i in range(start, stop)
            ],
            wait=True,
        )
        assert result.status == models.UpdateStatus.COMPLETED
    return Loaded(name=name, x=x, distance=distance, ids=list(range(n)), payloads=payloads)


# --------------------------------------------------------------------------------------------------
# fixtures


@pytest.fixture(scope="module")
def client(server):
    c = make_client(server.url)
    yield c
    c.close()


@pytest.fixture(scope="module")
def main(client) -> Loaded:
    """A cosine collection of N points with payloads, shared by the read-only tests below."""
    loaded = load_collection(client, unique_name("e2e_main"), DIM, models.Distance.COSINE, N, SEED)
    yield loaded
    client.delete_collection(loaded.name)


@pytest.fixture(scope="module")
def queries() -> np.ndarray:
    return make_vectors(8, DIM, SEED + 1)


# --------------------------------------------------------------------------------------------------
# service and collections


def test_root_reports_a_compatible_qdrant_version(server):
    r = httpx.get(server.url + "/", timeout=10)
    assert r.status_code == 200, r.text
    body = r.json()
    assert isinstance(body.get("title"), str), body
    assert isinstance(body.get("version"), str), body
    client_version = importlib.metadata.version("qdrant-client")
    server_version = get_server_version(server.url, {}, None, 10)
    assert server_version == body["version"]
    assert is_compatible(client_version, server_version), (
        f"client {client_version} considers server version {server_version} incompatible"
    )


def test_collection_lifecycle(client):
    name = unique_name("e2e_life")
    assert client.collection_exists(name) is False
    assert client.create_collection(name, vectors_config=models.VectorParams(size=16, distance=models.Distance.COSINE))
    assert client.collection_exists(name) is True

    info = client.get_collection(name)
    assert info.status in (models.CollectionStatus.GREEN, models.CollectionStatus.YELLOW)
    params = info.config.params.vectors
    assert isinstance(params, models.VectorParams), f"unnamed vector config expected, got {params!r}"
    assert params.size == 16
    assert params.distance == models.Distance.COSINE
    assert info.points_count == 0

    names = [c.name for c in client.get_collections().collections]
    assert name in names

    # Qdrant answers 409 Conflict for an existing collection.
    expect_error(409, lambda: client.create_collection(
        name, vectors_config=models.VectorParams(size=16, distance=models.Distance.COSINE)))

    assert client.delete_collection(name) is True
    assert client.collection_exists(name) is False
    assert client.delete_collection(name) is False  # Qdrant: 200 with result false
    assert name not in [c.name for c in client.get_collections().collections]
    expect_error(404, lambda: client.get_collection(name))


@pytest.mark.parametrize(
    "distance,dim",
    [(models.Distance.COSINE, 8), (models.Distance.DOT, 24), (models.Distance.EUCLID, 64)],
    ids=["cosine8", "dot24", "euclid64"],
)
def test_collection_info_reports_params_and_count(client, distance, dim):
    name = unique_name(f"e2e_info_{distance.value.lower()}")
    loaded = load_collection(client, name, dim, distance, 150, SEED + dim)
    try:
        info = client.get_collection(name)
        assert info.config.params.vectors.size == dim
        assert info.config.params.vectors.distance == distance
        assert info.points_count == 150
    finally:
        client.delete_collection(loaded.name)


# --------------------------------------------------------------------------------------------------
# query against brute force


@pytest.mark.parametrize(
    "distance,dim",
    [(models.Distance.COSINE, 8), (models.Distance.DOT, 24), (models.Distance.EUCLID, 64)],
    ids=["cosine8", "dot24", "euclid64"],
)
def test_query_points_matches_brute_force(client, distance, dim):
    name = unique_name(f"e2e_q_{distance.value.lower()}")
    loaded = load_collection(client, name, dim, distance, 300, SEED + 7 * dim)
    try:
        for qi, q in enumerate(make_vectors(5, dim, SEED + 100 + dim)):
            res = client.query_points(name, query=q.tolist(), limit=K, with_payload=False)
            check_ranked(res.points, loaded.top_ids(q), loaded.score_map(q), distance, f"{name} q{qi}")
            for p in res.points:
                assert isinstance(p.version, int)
            # score_threshold: a minimum similarity for Cosine/Dot, a maximum distance for Euclid.
            top = loaded.top_ids(q, K)
            smap = loaded.score_map(q)
            threshold = (smap[top[3]] + smap[top[4]]) / 2.0
            res = client.query_points(name, query=q.tolist(), limit=K, score_threshold=threshold)
            check_ranked(res.points, top[:4], smap, distance, f"{name} q{qi} score_threshold")
    finally:
        client.delete_collection(name)


def test_query_cosine_main(client, main, queries):
    for qi, q in enumerate(queries):
        res = client.query_points(main.name, query=q.tolist(), limit=K)
        check_ranked(res.points, main.top_ids(q), main.score_map(q), main.distance, f"main q{qi}")


def test_query_numpy_vector(client, main, queries):
    q = queries[0]
    res = client.query_points(main.name, query=q, limit=K)
    check_ranked(res.points, main.top_ids(q), main.score_map(q), main.distance, "numpy query")


def test_query_with_payload_and_vectors(client, main, queries):
    q = queries[1]
    res = client.query_points(main.name, query=q.tolist(), limit=5, with_payload=True, with_vectors=True)
    assert len(res.points) == 5
    for p in res.points:
        assert p.payload == main.payloads[p.id], f"payload of {p.id}: {p.payload!r}"
        assert isinstance(p.vector, list), f"default vector should come back as a list, got {p.vector!r}"
        v = np.asarray(p.vector, dtype=np.float64)
        assert v.shape == (DIM,)
        # Qdrant normalises vectors of cosine collections on insert; compare directions.
        orig = main.x[p.id].astype(np.float64)
        assert np.allclose(v / np.linalg.norm(v), orig / np.linalg.norm(orig), atol=1e-3), f"vector of {p.id}"

    res = client.query_points(main.name, query=q.tolist(), limit=5, with_payload=False, with_vectors=False)
    assert len(res.points) == 5
    for p in res.points:
        assert not p.payload, f"with_payload=False returned payload {p.payload!r}"
        assert p.vector is None, f"with_vectors=False returned vector {p.vector!r}"

    res = client.query_points(main.name, query=q.tolist(), limit=5, with_payload=["group", "metadata"])
    for p in res.points:
        expected = {k: main.payloads[p.id][k] for k in ("group", "metadata")}
        assert p.payload == expected, f"payload selector: {p.payload!r}"

    res = client.query_points(main.name, query=q.tolist(), limit=5,
                              with_payload=models.PayloadSelectorExclude(exclude=["tags", "metadata"]))
    for p in res.points:
        expected = {k: v for k, v in main.payloads[p.id].items() if k not in ("tags", "metadata")}
        assert p.payload == expected, f"payload exclude selector: {p.payload!r}"


def test_query_score_threshold(client, main, queries):
    q = queries[2]
    top = main.top_ids(q, K)
    smap = main.score_map(q)
    threshold = (smap[top[4]] + smap[top[5]]) / 2.0  # between the 5th and 6th best exact scores
    res = client.query_points(main.name, query=q.tolist(), limit=K, score_threshold=threshold)
    assert all(p.score >= threshold for p in res.points), [p.score for p in res.points]
    check_ranked(res.points, top[:5], smap, main.distance, "score_threshold")


def test_query_offset(client, main, queries):
    q = queries[3]
    top = main.top_ids(q, 10)
    res = client.query_points(main.name, query=q.tolist(), limit=5, offset=5)
    check_ranked(res.points, top[5:10], main.score_map(q), main.distance, "offset 5 limit 5")


def test_query_with_filter(client, main, queries):
    q = queries[4]
    flt = models.Filter(must=[models.FieldCondition(key="group", match=models.MatchValue(value="b"))])
    res = client.query_points(main.name, query=q.tolist(), query_filter=flt, limit=K, with_payload=True)
    assert all(p.payload["group"] == "b" for p in res.points)
    mask = main.mask(lambda pid, p: p["group"] == "b")
    check_ranked(res.points, main.top_ids(q, K, mask), main.score_map(q), main.distance, "filtered query")


def test_query_batch_points(client, main, queries):
    flt = models.Filter(must=[models.FieldCondition(key="metadata.source", match=models.MatchValue(value="src2"))])
    requests = [
        models.QueryRequest(query=queries[0].tolist(), limit=K, with_payload=True),
        models.QueryRequest(query=queries[1].tolist(), limit=3, filter=flt, with_payload=True),
        models.QueryRequest(query=queries[2].tolist(), limit=K, with_payload=False, with_vector=True),
    ]
    results = client.query_batch_points(main.name, requests=requests)
    assert len(results) == 3
    mask = main.mask(lambda pid, p: p["metadata"]["source"] == "src2")
    check_ranked(results[0].points, main.top_ids(queries[0]), main.score_map(queries[0]), main.distance, "batch 0")
    check_ranked(results[1].points, main.top_ids(queries[1], 3, mask), main.score_map(queries[1]), main.distance,
                 "batch 1")
    assert all(p.payload["metadata"]["source"] == "src2" for p in results[1].points)
    check_ranked(results[2].points, main.top_ids(queries[2]), main.score_map(queries[2]), main.distance, "batch 2")
    assert all(isinstance(p.vector, list) for p in results[2].points)
    single = client.query_points(main.name, query=queries[0].tolist(), limit=K)
    assert [p.id for p in single.points] == [p.id for p in results[0].points]


# --------------------------------------------------------------------------------------------------
# the legacy search endpoints and raw REST shapes


def test_legacy_search_client_method(client, main, queries):
    if not hasattr(client, "search"):
        pytest.skip("qdrant-client %s has no QdrantClient.search (removed); the REST endpoint is tested raw"
                    % importlib.metadata.version("qdrant-client"))
    q = queries[0]
    hits = client.search(main.name, query_vector=q.tolist(), limit=K)
    check_ranked(hits, main.top_ids(q), main.score_map(q), main.distance, "client.search")


def _envelope(r: httpx.Response) -> Any:
    assert r.status_code == 200, f"{r.request.method} {r.request.url}: HTTP {r.status_code} {r.text}"
    body = r.json()
    assert body.get("status") == "ok", body
    assert isinstance(body.get("time"), (int, float)), body
    return body["result"]


def test_legacy_search_rest(server, main, queries):
    scored = TypeAdapter(list[models.ScoredPoint])
    q = queries[0]
    with httpx.Client(base_url=server.url, timeout=30) as http:
        for vector in (q.tolist(), {"name": "", "vector": q.tolist()}):
            result = _envelope(http.post(f"/collections/{main.name}/points/search",
                                         json={"vector": vector, "limit": K, "with_payload": True}))
            hits = scored.validate_python(result)
            check_ranked(hits, main.top_ids(q), main.score_map(q), main.distance, f"POST points/search {vector!s:.20}")
            for h in hits:
                assert h.payload == main.payloads[h.id]

        flt = {"must": [{"key": "group", "match": {"value": "c"}}]}
        result = _envelope(http.post(f"/collections/{main.name}/points/search/batch", json={"searches": [
            {"vector": queries[1].tolist(), "limit": 4},
            {"vector": queries[2].tolist(), "limit": K, "filter": flt, "with_payload": True},
        ]}))
        assert isinstance(result, list) and len(result) == 2
        b0 = scored.validate_python(result[0])
        b1 = scored.validate_python(result[1])
        check_ranked(b0, main.top_ids(queries[1], 4), main.score_map(queries[1]), main.distance, "search/batch 0")
        mask = main.mask(lambda pid, p: p["group"] == "c")
        check_ranked(b1, main.top_ids(queries[2], K, mask), main.score_map(queries[2]), main.distance,
                     "search/batch 1")


def test_query_rest_plain_vector_and_using(server, main, queries):
    """The subset doc's form: "query" as a bare vector and "using": "" (LangChain)."""
    q = queries[5]
    with httpx.Client(base_url=server.url, timeout=30) as http:
        for body in ({"query": q.tolist(), "limit": K},
                     {"query": q.tolist(), "using": "", "limit": K, "with_payload": True},
                     {"query": {"nearest": q.tolist()}, "limit": K}):
            result = _envelope(http.post(f"/collections/{main.name}/points/query", json=body))
            hits = TypeAdapter(list[models.ScoredPoint]).validate_python(result["points"])
            check_ranked(hits, main.top_ids(q), main.score_map(q), main.distance, f"query {list(body)}")


# --------------------------------------------------------------------------------------------------
# retrieve, scroll, count


def test_retrieve(client, main):
    ids = [0, 5, 17, 399, 987654]  # the last one does not exist
    records = client.retrieve(main.name, ids=ids, with_payload=True, with_vectors=True)
    by_id = {r.id: r for r in records}
    assert set(by_id) == {0, 5, 17, 399}, f"retrieve returned {sorted(by_id)}"
    for pid, r in by_id.items():
        assert r.payload == main.payloads[pid]
        v = np.asarray(r.vector, dtype=np.float64)
        orig = main.x[pid].astype(np.float64)
        assert np.allclose(v / np.linalg.norm(v), orig / np.linalg.norm(orig), atol=1e-3)

    records = client.retrieve(main.name, ids=[3], with_payload=False, with_vectors=False)
    assert len(records) == 1 and records[0].id == 3
    assert not records[0].payload and records[0].vector is None

    one = client.http.points_api.get_point(main.name, 7)
    assert one.result.id == 7 and one.result.payload == main.payloads[7]
    expect_error(404, lambda: client.http.points_api.get_point(main.name, 987654))


def test_scroll_paginates_through_all_points(client, main):
    seen: list[Any] = []
    offset = None
    pages = 0
    while True:
        asked = offset
        records, offset = client.scroll(main.name, limit=37, offset=offset, with_payload=True)
        pages += 1
        assert len(records) <= 37
        ids = [r.id for r in records]
        if asked is not None:
            assert ids[0] == asked, f"a page starts at the offset it was asked for: {asked} vs {ids[:3]}"
        assert ids == sorted(ids), f"scroll page not in id order: {ids}"
        for r in records:
            assert r.payload == main.payloads[r.id]
        seen.extend(ids)
        if offset is None:
            break
        assert pages < 100, "scroll does not terminate"
    assert len(seen) == len(set(seen)), "scroll returned an id twice"
    assert sorted(seen) == sorted(main.ids)
    assert seen == sorted(seen), "scroll pages not in id order"
    assert pages == -(-N // 37)


def test_scroll_offset_between_ids(client, main):
    # Among the points matching the filter (multiples of 3), an offset of 10 starts at the next one, 12.
    flt = models.Filter(must=[fc("n", match=models.MatchAny(any=list(range(0, N, 3))))])
    records, nxt = client.scroll(main.name, scroll_filter=flt, limit=3, offset=10)
    assert [r.id for r in records] == [12, 15, 18] and nxt == 21


def test_scroll_with_filter(client, main):
    flt = models.Filter(must=[models.FieldCondition(key="group", match=models.MatchValue(value="b"))])
    seen: list[Any] = []
    offset = None
    while True:
        records, offset = client.scroll(main.name, scroll_filter=flt, limit=25, offset=offset, with_payload=True)
        seen.extend(r.id for r in records)
        if offset is None:
            break
    expected = [pid for pid, p in zip(main.ids, main.payloads) if p["group"] == "b"]
    assert sorted(seen) == expected and len(seen) == len(set(seen))


def test_count(client, main):
    assert client.count(main.name, exact=True).count == N
    assert client.count(main.name).count == N
    flt = models.Filter(must=[models.FieldCondition(key="even", match=models.MatchValue(value=True))])
    assert client.count(main.name, count_filter=flt, exact=True).count == N // 2


# --------------------------------------------------------------------------------------------------
# filters


def fc(key: str, **kwargs: Any) -> models.FieldCondition:
    return models.FieldCondition(key=key, **kwargs)


FILTER_CASES: list[tuple[str, models.Filter, Callable[[Any, dict[str, Any]], bool]]] = [
    ("must_keyword", models.Filter(must=[fc("group", match=models.MatchValue(value="a"))]),
     lambda i, p: p["group"] == "a"),
    ("must_integer", models.Filter(must=[fc("metadata.page", match=models.MatchValue(value=3))]),
     lambda i, p: p["metadata"]["page"] == 3),
    ("must_bool", models.Filter(must=[fc("even", match=models.MatchValue(value=False))]),
     lambda i, p: not p["even"]),
    ("match_any", models.Filter(must=[fc("group", match=models.MatchAny(any=["a", "c"]))]),
     lambda i, p: p["group"] in ("a", "c")),
    ("match_any_integer", models.Filter(must=[fc("n", match=models.MatchAny(any=[1, 2, 3, 250, 10_000]))]),
     lambda i, p: p["n"] in (1, 2, 3, 250)),
    ("array_value", models.Filter(must=[fc("tags", match=models.MatchValue(value="t2"))]),
     lambda i, p: "t2" in p["tags"]),
    ("array_any", models.Filter(must=[fc("tags", match=models.MatchAny(any=["t1", "t3"]))]),
     lambda i, p: bool({"t1", "t3"} & set(p["tags"]))),
    ("range_int", models.Filter(must=[fc("n", range=models.Range(gte=100, lt=200))]),
     lambda i, p: 100 <= p["n"] < 200),
    ("range_float", models.Filter(must=[fc("weight", range=models.Range(gt=0.5, lte=0.8))]),
     lambda i, p: 0.5 < p["weight"] <= 0.8),
    ("has_id", models.Filter(must=[models.HasIdCondition(has_id=[1, 2, 3, 250, 10_000])]),
     lambda i, p: i in (1, 2, 3, 250)),
    ("nested_key", models.Filter(must=[fc("metadata.source", match=models.MatchValue(value="src3"))]),
     lambda i, p: p["metadata"]["source"] == "src3"),
    ("should", models.Filter(should=[fc("group", match=models.MatchValue(value="a")),
                                     fc("metadata.source", match=models.MatchValue(value="src1"))]),
     lambda i, p: p["group"] == "a" or p["metadata"]["source"] == "src1"),
    ("must_not", models.Filter(must_not=[fc("group", match=models.MatchValue(value="a"))]),
     lambda i, p: p["group"] != "a"),
    ("combined", models.Filter(
        must=[fc("group", match=models.MatchValue(value="b"))],
        must_not=[fc("metadata.source", match=models.MatchValue(value="src0"))],
        should=[fc("n", range=models.Range(lt=100)), fc("even", match=models.MatchValue(value=True))]),
     lambda i, p: p["group"] == "b" and p["metadata"]["source"] != "src0" and (p["n"] < 100 or p["even"])),
    ("match_except", models.Filter(must=[fc("group", match=models.MatchExcept(**{"except": ["a"]}))]),
     lambda i, p: p["group"] != "a"),
    ("is_empty", models.Filter(must=[models.IsEmptyCondition(is_empty=models.PayloadField(key="opt"))]),
     lambda i, p: p.get("opt") in (None, [])),
    ("not_is_empty", models.Filter(must_not=[models.IsEmptyCondition(is_empty=models.PayloadField(key="opt"))]),
     lambda i, p: p.get("opt") not in (None, [])),
    ("is_null", models.Filter(must=[models.IsNullCondition(is_null=models.PayloadField(key="opt"))]),
     lambda i, p: "opt" in p and p["opt"] is None),
    ("nested_filter", models.Filter(must=[models.Filter(should=[
        fc("metadata.page", match=models.MatchValue(value=0)), fc("metadata.page", match=models.MatchValue(value=6))])]),
     lambda i, p: p["metadata"]["page"] in (0, 6)),
]


@pytest.mark.parametrize("case", FILTER_CASES, ids=[c[0] for c in FILTER_CASES])
def test_filters(client, main, queries, case):
    name, flt, pred = case
    mask = main.mask(pred)
    expected = sorted(pid for pid, m in zip(main.ids, mask) if m)
    assert expected, f"{name}: the test data should match something"

    assert client.count(main.name, count_filter=flt, exact=True).count == len(expected), name

    records, nxt = client.scroll(main.name, scroll_filter=flt, limit=N, with_payload=False)
    assert nxt is None
    assert sorted(r.id for r in records) == expected, name

    q = queries[6]
    res = client.query_points(main.name, query=q.tolist(), query_filter=flt, limit=K)
    check_ranked(res.points, main.top_ids(q, K, mask), main.score_map(q), main.distance, f"filter {name}")


def test_payload_index_is_accepted(client, main):
    result = client.create_payload_index(
        main.name, field_name="metadata.source", field_schema=models.PayloadSchemaType.KEYWORD, wait=True)
    assert result.status == models.UpdateStatus.COMPLETED
    flt = models.Filter(must=[fc("metadata.source", match=models.MatchValue(value="src4"))])
    assert client.count(main.name, count_filter=flt).count == N // 5


# --------------------------------------------------------------------------------------------------
# the default vector named "" (how LangChain creates and fills collections)


def test_default_vector_named_empty_string(client):
    name = unique_name("e2e_named")
    dim = 16
    assert client.create_collection(
        name, vectors_config={"": models.VectorParams(size=dim, distance=models.Distance.DOT)},
        sparse_vectors_config={})
    try:
        x = make_vectors(50, dim, SEED + 20)
        client.upsert(name, points=[models.PointStruct(id=i, vector={"": x[i].tolist()}) for i in range(25)])
        client.upsert(name, points=[models.PointStruct(id=i, vector=x[i].tolist()) for i in range(25, 50)])
        assert client.count(name).count == 50
        loaded = Loaded(name=name, x=x, distance=models.Distance.DOT, ids=list(range(50)))

        info = client.get_collection(name)
        vectors = info.config.params.vectors
        params = vectors[""] if isinstance(vectors, dict) else vectors
        assert params.size == dim and params.distance == models.Distance.DOT

        q = make_vectors(1, dim, SEED + 21)[0]
        for using in ("", None):
            res = client.query_points(name, query=q.tolist(), using=using, limit=K, with_vectors=True)
            check_ranked(res.points, loaded.top_ids(q), loaded.score_map(q), loaded.distance, f"using={using!r}")
            for p in res.points:
                # Qdrant answers the default vector "" alone as a plain list, not {"": [..]}.
                assert isinstance(p.vector, list), f"query with_vectors: default vector came back as {p.vector!r:.80}"
                assert np.allclose(p.vector, x[p.id], atol=1e-5)
        rec = client.retrieve(name, ids=[3], with_vectors=True)[0]
        assert isinstance(rec.vector, list), f"retrieve with_vectors: default vector came back as {rec.vector!r:.80}"
    finally:
        client.delete_collection(name)


# --------------------------------------------------------------------------------------------------
# writes: Batch, UUID ids, overwrite, delete


def test_upsert_batch_and_uuid_ids(client):
    name = unique_name("e2e_uuid")
    dim = 12
    distance = models.Distance.DOT
    assert client.create_collection(name, vectors_config=models.VectorParams(size=dim, distance=distance))
    try:
        x = make_vectors(70, dim, SEED + 3)
        rng = np.random.default_rng(SEED + 4)
        uuids = [uuid.UUID(bytes=rng.bytes(16), version=4) for _ in range(20)]
        int_ids = list(range(1000, 1050))
        payloads = [make_payload(i) for i in range(70)]

        result = client.upsert(name, points=models.Batch(
            ids=int_ids, vectors=x[:50].tolist(), payloads=payloads[:50]))
        assert result.status == models.UpdateStatus.COMPLETED
        result = client.upsert(name, points=[
            models.PointStruct(id=str(u), vector=x[50 + j].tolist(), payload=payloads[50 + j])
            for j, u in enumerate(uuids)])
        assert result.status == models.UpdateStatus.COMPLETED
        assert client.count(name).count == 70

        ids: list[Any] = int_ids + [str(u) for u in uuids]
        loaded = Loaded(name=name, x=x, distance=distance, ids=ids, payloads=payloads)

        # UUIDs come back hyphenated, whether asked for hyphenated, as hex or as uuid.UUID.
        records = client.retrieve(name, ids=[str(uuids[0]), uuids[1].hex, uuids[2]], with_vectors=True)
        assert sorted(r.id for r in records) == sorted(str(u) for u in uuids[:3]), [r.id for r in records]
        for r in records:
            j = 50 + [str(u) for u in uuids].index(r.id)
            assert r.payload == payloads[j]
            assert np.allclose(r.vector, x[j], atol=1e-5), "DOT vectors are stored as given"

        # Batch vectors read back too.
        records = client.retrieve(name, ids=[1000, 1049], with_vectors=True)
        for r in records:
            assert np.allclose(r.vector, x[r.id - 1000], atol=1e-5)

        for qi, q in enumerate(make_vectors(4, dim, SEED + 5)):
            res = client.query_points(name, query=q.tolist(), limit=K)
            check_ranked(res.points, loaded.top_ids(q), loaded.score_map(q), distance, f"uuid q{qi}")

        seen: list[Any] = []
        offset = None
        while True:
            recs, offset = client.scroll(name, limit=16, offset=offset)
            seen.extend(r.id for r in recs)
            if offset is None:
                break
        assert len(seen) == len(set(seen)) == 70
        assert set(seen) == set(ids)

        flt = models.Filter(must=[models.HasIdCondition(has_id=[str(uuids[5]), 1003])])
        assert sorted(map(str, (r.id for r in client.scroll(name, scroll_filter=flt, limit=10)[0]))) == sorted(
            [str(uuids[5]), "1003"])

        # Upsert overwrites: same id, new vector and payload, the count stays.
        client.upsert(name, points=[models.PointStruct(id=1000, vector=x[69].tolist(), payload={"new": True})])
        assert client.count(name).count == 70
        rec = client.retrieve(name, ids=[1000], with_vectors=True)[0]
        assert rec.payload == {"new": True}
        assert np.allclose(rec.vector, x[69], atol=1e-5)
    finally:
        client.delete_collection(name)


def test_delete_points_by_ids_and_filter(client):
    name = unique_name("e2e_del")
    loaded = load_collection(client, name, 16, models.Distance.COSINE, 120, SEED + 9)
    try:
        result = client.delete(name, points_selector=models.PointIdsList(points=[0, 1, 2, 50, 10_000]), wait=True)
        assert result.status == models.UpdateStatus.COMPLETED
        assert client.count(name).count == 116
        assert client.retrieve(name, ids=[0, 1, 2, 50]) == []

        result = client.delete(name, points_selector=[3, 4])  # a plain list of ids
        assert result.status == models.UpdateStatus.COMPLETED
        assert client.count(name).count == 114

        flt = models.Filter(must=[fc("group", match=models.MatchValue(value="a"))])
        result = client.delete(name, points_selector=models.FilterSelector(filter=flt), wait=True)
        assert result.status == models.UpdateStatus.COMPLETED
        deleted = {0, 1, 2, 3, 4, 50}
        alive = [i for i in loaded.ids if i not in deleted and loaded.payloads[i]["group"] != "a"]
        assert client.count(name).count == len(alive)
        assert client.count(name, count_filter=flt).count == 0

        mask = np.zeros(len(loaded.ids), dtype=bool)
        mask[alive] = True
        q = make_vectors(1, 16, SEED + 10)[0]
        res = client.query_points(name, query=q.tolist(), limit=K)
        check_ranked(res.points, loaded.top_ids(q, K, mask), loaded.score_map(q), loaded.distance, "after delete")
        assert not ({p.id for p in res.points} - set(alive))

        records, nxt = client.scroll(name, limit=1000)
        assert nxt is None and sorted(r.id for r in records) == alive
    finally:
        client.delete_collection(name)


def test_payload_roundtrip_and_extreme_ids(client):
    name = unique_name("e2e_payload")
    assert client.create_collection(name, vectors_config=models.VectorParams(size=4, distance=models.Distance.DOT))
    try:
        payload = {
            "text": "naïve café — 東京 ✓ \"quoted\" \\ back\nslash",
            "int": 9007199254740993,  # > 2^53: must not pass through a double
            "neg": -42,
            "float": 0.1,
            "tiny": 1e-300,
            "true": True,
            "false": False,
            "zero_int": 0,
            "null": None,
            "empty_obj": {},
            "empty_arr": [],
            "nested": {"a": [{"b": 1}, {"b": [1, 2.5, "x", None, True]}], "c": {"d": {"e": "deep"}}},
        }
        ids = [0, 1, 2**53 + 1, 2**63 - 1, 2**63, 2**64 - 1]
        client.upsert(name, points=[
            models.PointStruct(id=pid, vector=[float(j + 1), 0.0, 0.0, 0.0], payload=payload)
            for j, pid in enumerate(ids)])
        records = client.retrieve(name, ids=ids, with_payload=True)
        assert sorted(r.id for r in records) == ids
        for r in records:
            assert r.payload == payload
            assert type(r.payload["true"]) is bool and type(r.payload["zero_int"]) is int
            assert type(r.payload["float"]) is float and r.payload["int"] == 9007199254740993
        records, nxt = client.scroll(name, limit=10)
        assert nxt is None and [r.id for r in records] == ids, "scroll orders u64 ids numerically"
        res = client.query_points(name, query=[1.0, 0.0, 0.0, 0.0], limit=2)
        assert [p.id for p in res.points] == [2**64 - 1, 2**63]
        assert client.http.points_api.get_point(name, 2**64 - 1).result.id == 2**64 - 1
        flt = models.Filter(must=[fc("nested.c.d.e", match=models.MatchValue(value="deep"))])
        assert client.count(name, count_filter=flt).count == len(ids)
        flt = models.Filter(must=[fc("int", match=models.MatchValue(value=9007199254740993))])
        assert client.count(name, count_filter=flt).count == len(ids)
    finally:
        client.delete_collection(name)


def test_query_with_search_params_and_empty_collection(client, main, queries):
    q = queries[7]
    for params in (models.SearchParams(hnsw_ef=128, exact=True),
                   models.SearchParams(exact=False, quantization=models.QuantizationSearchParams(
                       ignore=False, rescore=True, oversampling=2.0))):
        res = client.query_points(main.name, query=q.tolist(), limit=K, search_params=params)
        check_ranked(res.points, main.top_ids(q), main.score_map(q), main.distance, f"search_params {params}")

    name = unique_name("e2e_empty")
    assert client.create_collection(name, vectors_config=models.VectorParams(size=DIM, distance=models.Distance.COSINE))
    try:
        assert client.query_points(name, query=q.tolist(), limit=K).points == []
        assert client.scroll(name, limit=10) == ([], None)
        assert client.count(name).count == 0
        assert client.retrieve(name, ids=[1, 2]) == []
    finally:
        client.delete_collection(name)


def test_concurrent_clients(server):
    name = unique_name("e2e_conc")
    dim = 16
    x = make_vectors(400, dim, SEED + 50)
    admin = make_client(server.url)
    assert admin.create_collection(name, vectors_config=models.VectorParams(size=dim, distance=models.Distance.DOT))

    def writer(w: int) -> int:
        c = make_client(server.url, check_compatibility=False)
        try:
            for b in range(5):
                lo = w * 50 + b * 10
                r = c.upsert(name, points=models.Batch(ids=list(range(lo, lo + 10)), vectors=x[lo:lo + 10].tolist()))
                assert r.status == models.UpdateStatus.COMPLETED
            return 50
        finally:
            c.close()

    def reader(r: int) -> int:
        c = make_client(server.url, check_compatibility=False)
        try:
            for j in range(20):
                res = c.query_points(name, query=x[(r * 20 + j) % 400].tolist(), limit=5)
                assert len(res.points) <= 5
                c.count(name)
                c.scroll(name, limit=20)
            return 0
        finally:
            c.close()

    try:
        with ThreadPoolExecutor(max_workers=8) as pool:
            futures = [pool.submit(writer, w) for w in range(8)] + [pool.submit(reader, r) for r in range(4)]
            written = sum(f.result(timeout=120) for f in futures)
        assert written == 400
        assert admin.count(name).count == 400
        loaded = Loaded(name=name, x=x, distance=models.Distance.DOT, ids=list(range(400)))
        q = make_vectors(1, dim, SEED + 51)[0]
        res = admin.query_points(name, query=q.tolist(), limit=K)
        check_ranked(res.points, loaded.top_ids(q), loaded.score_map(q), loaded.distance, "after concurrent writes")
    finally:
        admin.delete_collection(name)
        admin.close()


def test_upsert_without_wait(client):
    name = unique_name("e2e_nowait")
    assert client.create_collection(name, vectors_config=models.VectorParams(size=8, distance=models.Distance.EUCLID))
    try:
        x = make_vectors(30, 8, SEED + 30)
        result = client.upsert(name, points=models.Batch(ids=list(range(30)), vectors=x.tolist()), wait=False)
        assert result.status in (models.UpdateStatus.ACKNOWLEDGED, models.UpdateStatus.COMPLETED)
        # Without wait the write may land a little later.
        deadline = time.monotonic() + 10
        while client.count(name).count != 30 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert client.count(name).count == 30
    finally:
        client.delete_collection(name)


def test_data_survives_a_restart(tmp_path):
    srv = _start_server(tmp_path)
    name = "e2e_durable"
    x = make_vectors(80, 16, SEED + 40)
    try:
        c = make_client(srv.url)
        load = [models.PointStruct(id=i, vector=x[i].tolist(), payload=make_payload(i)) for i in range(80)]
        assert c.create_collection(name, vectors_config=models.VectorParams(size=16, distance=models.Distance.COSINE))
        c.upsert(name, points=load[:40])
        c.upsert(name, points=models.Batch(ids=list(range(40, 80)), vectors=x[40:].tolist(),
                                           payloads=[make_payload(i) for i in range(40, 80)]))
        c.delete(name, points_selector=[7, 8])
        c.close()
    finally:
        _stop_server(srv)

    srv = _start_server(tmp_path)
    try:
        c = make_client(srv.url)
        assert c.collection_exists(name)
        info = c.get_collection(name)
        assert info.config.params.vectors.size == 16 and info.points_count == 78
        records, nxt = c.scroll(name, limit=100, with_payload=True)
        assert nxt is None and sorted(r.id for r in records) == [i for i in range(80) if i not in (7, 8)]
        assert all(r.payload == make_payload(r.id) for r in records)
        ids = [i for i in range(80) if i not in (7, 8)]
        loaded = Loaded(name=name, x=x[ids], distance=models.Distance.COSINE, ids=ids)
        q = make_vectors(1, 16, SEED + 41)[0]
        res = c.query_points(name, query=q.tolist(), limit=K)
        check_ranked(res.points, loaded.top_ids(q), loaded.score_map(q), loaded.distance, "after restart")
        c.close()
    finally:
        _stop_server(srv)


def test_health_probes(server):
    with httpx.Client(base_url=server.url, timeout=10) as http:
        for path in ("/healthz", "/readyz", "/livez"):
            r = http.get(path)
            assert r.status_code == 200, f"GET {path}: {r.status_code} {r.text}"
        r = http.get("/metrics")
        assert r.status_code == 200, r.text
        assert r.headers["content-type"].startswith("text/plain"), r.headers


# --------------------------------------------------------------------------------------------------
# errors


def test_errors(client, main):
    missing = unique_name("e2e_missing")
    q = make_vectors(1, DIM, 1)[0].tolist()
    expect_error(404, lambda: client.query_points(missing, query=q, limit=3))
    expect_error(404, lambda: client.get_collection(missing))
    expect_error(404, lambda: client.count(missing))
    expect_error(404, lambda: client.scroll(missing))
    expect_error(404, lambda: client.upsert(missing, points=[models.PointStruct(id=1, vector=q, payload={})]))

    short = q[:-1]
    expect_error(400, lambda: client.upsert(main.name, points=[models.PointStruct(id=5000, vector=short)]))
    expect_error(400, lambda: client.upsert(main.name, points=[models.PointStruct(id=5000, vector=q + [0.5])]))
    expect_error(400, lambda: client.query_points(main.name, query=short, limit=3))
    assert client.count(main.name).count == N, "a rejected upsert must not write anything"

    expect_error(409, lambda: client.create_collection(
        main.name, vectors_config=models.VectorParams(size=DIM, distance=models.Distance.COSINE)))
    # The existing collection is untouched.
    assert client.get_collection(main.name).points_count == N


def test_error_on_malformed_body(server, main):
    with httpx.Client(base_url=server.url, timeout=30) as http:
        r = http.post(f"/collections/{main.name}/points/query", content=b"{not json",
                      headers={"content-type": "application/json"})
        assert r.status_code == 400, r.text
        assert isinstance(r.json()["status"]["error"], str)
        r = http.put(f"/collections/{main.name}/points", json={"points": [{"id": -1, "vector": [0.0] * DIM}]})
        assert r.status_code == 400, f"negative point id accepted: {r.status_code} {r.text}"
        r = http.put(f"/collections/{main.name}/points", json={"points": [{"id": "not-a-uuid", "vector": [0.0] * DIM}]})
        assert r.status_code == 400, f"invalid string id accepted: {r.status_code} {r.text}"


# --------------------------------------------------------------------------------------------------
# anchors and cross-model queries: set up over raw HTTP (vecstash's own endpoints), then queried
# through qdrant-client with `using`


def test_cross_model_query_through_the_client(server, client):
    name = unique_name("e2e_anchors")
    n, model_dim = 300, 40
    x = make_vectors(n, DIM, SEED + 21)
    # A second "model": the same items rotated into 40 dimensions (orthonormal columns), so the map
    # fitted on the anchors is exact and its answers can be checked against the brute force.
    rotation, _ = np.linalg.qr(np.random.default_rng(SEED + 22).standard_normal((model_dim, DIM)))
    y = (x.astype(np.float64) @ rotation.T).astype(np.float32)
    assert client.create_collection(name, vectors_config=models.VectorParams(size=DIM, distance=models.Distance.COSINE))
    try:
        client.upsert(name, points=models.Batch(ids=list(range(n)), vectors=x.tolist()), wait=True)
        with httpx.Client(base_url=server.url, timeout=60) as http:
            anchors = _envelope(http.put(f"/collections/{name}/anchors", json={"strategy": "kmeans", "count": 64}))
            assert anchors["count"] == 64 and len(set(anchors["ids"])) == 64, anchors
            assert anchors["relative"]["name"] == "relative" and anchors["relative"]["rows"] == n
            model = _envelope(http.put(f"/collections/{name}/models/other",
                                       json={"vectors": y[anchors["ids"]].tolist()}))
            assert model["dim"] == model_dim and model["method"] == "local", model
            assert model["procrustes_fit_cosine"] > 0.99, model
            assert model["hubness"] == {"weight": 0.5, "neighbours": 10}, model  # 64 anchors: on by default
            summary = _envelope(http.get(f"/collections/{name}"))["config"]["vecstash"]["anchors"]
            assert summary["models"] == ["other"] and summary["count"] == 64, summary
            # Another method for one query: params.vecstash (qdrant-client's SearchParams has no room for it).
            qy = (make_vectors(1, DIM, SEED + 24)[0].astype(np.float64) @ rotation.T).tolist()
            for method in ("affine", "procrustes"):
                body = {"query": qy, "using": "other", "limit": K, "params": {"vecstash": {"method": method}}}
                assert len(_envelope(http.post(f"/collections/{name}/points/query", json=body))["points"]) == K

        assert client.get_collection(name).points_count == n  # the anchor summary does not upset the client
        # The exact map sends the model's anchors onto the collection's, so the hubness-corrected
        # brute force is: cos(q, x) - 0.5 * (mean of x's 10 highest cosines to the anchors).
        xn = x / np.linalg.norm(x, axis=1, keepdims=True)
        hub = np.sort(xn @ xn[anchors["ids"]].T, axis=1)[:, -10:].mean(axis=1)
        loaded = Loaded(name=name, x=x, distance=models.Distance.COSINE, ids=list(range(n)))
        queries = make_vectors(3, DIM, SEED + 23)
        for qi, q in enumerate(queries):
            qy = (q.astype(np.float64) @ rotation.T).tolist()
            want = xn @ (q / np.linalg.norm(q)) - 0.5 * hub
            top = np.argsort(-want, kind="stable")[:K]
            res = client.query_points(name, query=qy, using="other", limit=K)
            check_ranked(res.points, [int(i) for i in top], {i: float(want[i]) for i in range(n)},
                         models.Distance.COSINE, f"using=other q{qi}")
            # Without the correction (per query, through params.vecstash): the collection's own answer.
            with httpx.Client(base_url=server.url, timeout=60) as http:
                plain = _envelope(http.post(f"/collections/{name}/points/query", json={
                    "query": qy, "using": "other", "limit": K, "params": {"vecstash": {"hubness_weight": 0}}}))
            score_of = loaded.score_map(q)
            assert [p["id"] for p in plain["points"]][:3] == loaded.top_ids(q)[:3], plain
            assert all(abs(p["score"] - score_of[p["id"]]) <= SCORE_ATOL for p in plain["points"]), plain
        batch = client.query_batch_points(name, requests=[
            models.QueryRequest(query=(queries[0].astype(np.float64) @ rotation.T).tolist(), using="other", limit=K),
            models.QueryRequest(query=x[7].tolist(), using="relative", limit=3),
        ])
        assert len(batch) == 2 and len(batch[0].points) == K
        # A stored point is its own nearest neighbour among the relative vectors too.
        assert batch[1].points[0].id == 7, batch[1].points
        expect_error(400, lambda: client.query_points(name, query=[0.1] * model_dim, using="nope", limit=3))
        expect_error(400, lambda: client.query_points(name, query=[0.1] * DIM, using="other", limit=3))
    finally:
        client.delete_collection(name)



# --------------------------------------------------------------------------------------------------
# vecstash's own settings


def test_vecstash_settings_roundtrip(server, client):
    name = unique_name("e2e_e4m3")
    with httpx.Client(base_url=server.url, timeout=30) as http:
        body = {"vectors": {"size": DIM, "distance": "Cosine"}, "vecstash": {"codec": {"kind": "e4m3"}}}
        assert _envelope(http.put(f"/collections/{name}", json=body)) is True
        try:
            info = _envelope(http.get(f"/collections/{name}"))
            assert info["config"]["vecstash"]["codec"]["kind"] == "e4m3", info["config"].get("vecstash")
            assert "vecstash" not in info["config"]["params"]["vectors"]
            parsed = client.get_collection(name)  # the client ignores the extra key
            assert parsed.config.params.vectors.size == DIM

            x = make_vectors(200, DIM, SEED + 11)
            client.upsert(name, points=models.Batch(ids=list(range(200)), vectors=x.tolist()))
            loaded = Loaded(name=name, x=x, distance=models.Distance.COSINE, ids=list(range(200)))
            for qi, q in enumerate(make_vectors(3, DIM, SEED + 12)):
                res = client.query_points(name, query=q.tolist(), limit=K)
                check_ranked(res.points, loaded.top_ids(q), loaded.score_map(q), loaded.distance, f"e4m3 q{qi}")
        finally:
            client.delete_collection(name)


# --------------------------------------------------------------------------------------------------
# API keys


@pytest.fixture(scope="module")
def keyed_collection(keyed_server):
    admin = make_client(keyed_server.url, api_key=API_KEY, https=False)
    name = unique_name("e2e_keyed")
    loaded = load_collection(admin, name, 16, models.Distance.COSINE, 60, SEED + 13)
    yield loaded
    admin.delete_collection(name)
    admin.close()


def test_api_key_admin_client_works(keyed_server, keyed_collection):
    admin = make_client(keyed_server.url, api_key=API_KEY, https=False)
    try:
        assert admin.collection_exists(keyed_collection.name)
        assert keyed_collection.name in [c.name for c in admin.get_collections().collections]
        q = make_vectors(1, 16, SEED + 14)[0]
        res = admin.query_points(keyed_collection.name, query=q.tolist(), limit=5)
        check_ranked(res.points, keyed_collection.top_ids(q, 5), keyed_collection.score_map(q),
                     keyed_collection.distance, "keyed admin")
        assert get_server_version(keyed_server.url, {"api-key": API_KEY}, None, 10)
    finally:
        admin.close()


def test_api_key_wrong_or_missing_is_rejected(keyed_server, keyed_collection):
    wrong = make_client(keyed_server.url, api_key="not-the-key", https=False, check_compatibility=False)
    try:
        expect_error((401, 403), lambda: wrong.get_collections())
        expect_error((401, 403), lambda: wrong.query_points(keyed_collection.name, query=[0.1] * 16, limit=3))
        expect_error((401, 403), lambda: wrong.upsert(keyed_collection.name, points=[
            models.PointStruct(id=999, vector=[0.1] * 16)]))
    finally:
        wrong.close()
    anonymous = make_client(keyed_server.url, check_compatibility=False)
    try:
        expect_error((401, 403), lambda: anonymous.get_collections())
        expect_error((401, 403), lambda: anonymous.count(keyed_collection.name))
    finally:
        anonymous.close()


def test_api_key_as_bearer_token(keyed_server, keyed_collection):
    with httpx.Client(base_url=keyed_server.url, timeout=30) as http:
        result = _envelope(http.get("/collections", headers={"Authorization": f"Bearer {API_KEY}"}))
        assert keyed_collection.name in [c["name"] for c in result["collections"]]
        r = http.get("/collections", headers={"Authorization": "Bearer wrong"})
        assert r.status_code in (401, 403), r.text


def test_read_only_key(keyed_server, keyed_collection):
    ro = make_client(keyed_server.url, api_key=READ_ONLY_API_KEY, https=False)
    name = keyed_collection.name
    try:
        assert ro.collection_exists(name)
        assert ro.get_collection(name).points_count == 60
        q = make_vectors(1, 16, SEED + 15)[0]
        res = ro.query_points(name, query=q.tolist(), limit=5)
        check_ranked(res.points, keyed_collection.top_ids(q, 5), keyed_collection.score_map(q),
                     keyed_collection.distance, "read-only query")
        records, nxt = ro.scroll(name, limit=100)
        assert nxt is None and sorted(r.id for r in records) == keyed_collection.ids
        assert ro.count(name).count == 60
        assert len(ro.retrieve(name, ids=[1, 2])) == 2
        res = ro.query_batch_points(name, requests=[models.QueryRequest(query=q.tolist(), limit=2)])
        assert len(res) == 1 and len(res[0].points) == 2

        expect_error(403, lambda: ro.upsert(name, points=[models.PointStruct(id=999, vector=q.tolist())]))
        expect_error(403, lambda: ro.delete(name, points_selector=[1]))
        expect_error(403, lambda: ro.create_collection(
            unique_name("e2e_ro"), vectors_config=models.VectorParams(size=4, distance=models.Distance.DOT)))
        expect_error(403, lambda: ro.delete_collection(name))
        assert ro.count(name).count == 60
    finally:
        ro.close()
