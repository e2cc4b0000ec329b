"""LangChain's QdrantVectorStore (langchain-qdrant) against a real vecstash server.

LangChain creates the collection with the default vector name "" ({"vectors": {"": {..}},
"sparse_vectors": {}}), upserts uuid4().hex ids, queries with "using": "" and stores
{"page_content": text, "metadata": {..}} payloads.
"""

from __future__ import annotations

import uuid

import pytest
from langchain_core.embeddings import DeterministicFakeEmbedding
from langchain_qdrant import QdrantVectorStore
from qdrant_client import QdrantClient, models

SIZE = 32
SOURCES = ("alpha", "beta", "gamma")
TEXTS = [f"document {i}: {word} notes about topic {i % 7}" for i, word in enumerate(
    ["apples", "rivers", "engines", "clouds", "violins", "granite", "orbits", "lanterns", "meadows", "copper",
     "harbors", "lichens", "sonnets", "glaciers", "pistons", "tundra", "quartz", "ferns", "beacons", "dunes",
     "marble", "comets", "willows", "anchors"])]
METADATAS = [{"source": SOURCES[i % 3], "i": i} for i in range(len(TEXTS))]


def source_filter(source: str) -> models.Filter:
    return models.Filter(must=[models.FieldCondition(key="metadata.source", match=models.MatchValue(value=source))])


@pytest.fixture(scope="module")
def embedding() -> DeterministicFakeEmbedding:
    return DeterministicFakeEmbedding(size=SIZE)


@pytest.fixture(scope="module")
def store(server, embedding):
    name = f"lc_{uuid.uuid4().hex[:8]}"
    vs = QdrantVectorStore.from_texts(
        TEXTS, embedding=embedding, metadatas=METADATAS, url=server.url, collection_name=name)
    yield vs
    vs.client.delete_collection(name)
    vs.client.close()


def test_collection_created_with_default_vector(store):
    info = store.client.get_collection(store.collection_name)
    vectors = info.config.params.vectors
    if isinstance(vectors, dict):  # Qdrant answers a named config when created named, even for ""
        vectors = vectors[""]
    assert vectors.size == SIZE
    assert vectors.distance == models.Distance.COSINE
    assert info.points_count == len(TEXTS)


def test_similarity_search_exact_text_first(store):
    for i in (0, 7, 23):
        docs = store.similarity_search(TEXTS[i], k=4)
        assert len(docs) == 4
        assert docs[0].page_content == TEXTS[i], [d.page_content for d in docs]
        assert docs[0].metadata["source"] == METADATAS[i]["source"]
        assert docs[0].metadata["i"] == i
        assert len({d.page_content for d in docs}) == 4


def test_similarity_search_with_filter(store):
    for source in SOURCES:
        docs = store.similarity_search(TEXTS[0], k=5, filter=source_filter(source))
        assert len(docs) == 5
        assert all(d.metadata["source"] == source for d in docs), [d.metadata for d in docs]
    # TEXTS[0] is an "alpha" document: with the alpha filter it still comes first.
    docs = store.similarity_search(TEXTS[0], k=3, filter=source_filter("alpha"))
    assert docs[0].page_content == TEXTS[0]
    # Only 8 docs are "beta": asking for more returns those 8.
    docs = store.similarity_search(TEXTS[1], k=20, filter=source_filter("beta"))
    assert sorted(d.metadata["i"] for d in docs) == [i for i in range(len(TEXTS)) if i % 3 == 1]


# LangChain warns when cosine (s + 1) / 2 rounds to a hair above 1.0 for a text queried with itself.
@pytest.mark.filterwarnings("ignore:Relevance scores must be between 0 and 1")
def test_similarity_search_with_score(store):
    results = store.similarity_search_with_score(TEXTS[5], k=6)
    assert len(results) == 6
    doc, score = results[0]
    assert doc.page_content == TEXTS[5]
    assert score == pytest.approx(1.0, abs=1e-2)  # cosine of a vector with itself
    scores = [s for _, s in results]
    assert scores == sorted(scores, reverse=True)
    assert all(-1.0 - 1e-3 <= s <= 1.0 + 1e-3 for s in scores)

    relevance = store.similarity_search_with_relevance_scores(TEXTS[5], k=3)
    assert relevance[0][0].page_content == TEXTS[5]
    assert relevance[0][1] == pytest.approx(1.0, abs=1e-2)


def test_max_marginal_relevance_search(store):
    # Sends {"query": {"nearest": [..], "mmr": {"diversity": .., "candidates_limit": ..}}, "using": "", "with_vector": true}
    docs = store.max_marginal_relevance_search(TEXTS[2], k=3, fetch_k=10)
    assert len(docs) == 3
    assert docs[0].page_content == TEXTS[2]
    assert len({d.page_content for d in docs}) == 3


def test_add_texts_with_ids_get_and_delete(store):
    new_texts = ["an extra note about saffron", "an extra note about basalt", "an extra note about kelp"]
    ids = [str(uuid.UUID(int=0xE2E0_0000 + j)) for j in range(2)] + [uuid.uuid4().hex]
    returned = store.add_texts(new_texts, metadatas=[{"source": "extra"}] * 3, ids=ids)
    assert returned == ids
    assert store.client.count(store.collection_name).count == len(TEXTS) + 3

    docs = store.similarity_search(new_texts[2], k=1)
    assert docs[0].page_content == new_texts[2]
    # Ids come back as hyphenated UUIDs, whatever form they were given in.
    assert docs[0].metadata["_id"] == str(uuid.UUID(ids[2]))

    got = store.get_by_ids(ids)
    assert sorted(d.page_content for d in got) == sorted(new_texts)

    assert len(store.similarity_search("extra", k=10, filter=source_filter("extra"))) == 3

    assert store.delete(ids=ids) is True
    assert store.client.count(store.collection_name).count == len(TEXTS)
    assert store.get_by_ids(ids) == []
    assert store.similarity_search("extra", k=10, filter=source_filter("extra")) == []
    for text in new_texts:
        assert store.similarity_search(text, k=1)[0].page_content != text


def test_add_texts_without_ids_returns_hex_ids(store):
    returned = store.add_texts(["a transient note"], metadatas=[{"source": "transient"}])
    assert len(returned) == 1
    try:
        docs = store.similarity_search("a transient note", k=1)
        assert docs[0].page_content == "a transient note"
        assert docs[0].metadata["_id"] == str(uuid.UUID(str(returned[0])))
    finally:
        assert store.delete(ids=returned) is True
    assert store.client.count(store.collection_name).count == len(TEXTS)


def test_reopen_existing_collection_validates_config(server, store, embedding):
    # A second from_texts on the same collection reads GET /collections/{c} and checks size and distance.
    vs = QdrantVectorStore.from_texts(
        ["one more text"], embedding=embedding, metadatas=[{"source": "reopen"}], url=server.url,
        collection_name=store.collection_name)
    try:
        assert vs.client.count(store.collection_name).count == len(TEXTS) + 1
        docs = vs.similarity_search("one more text", k=1, filter=source_filter("reopen"))
        assert docs[0].page_content == "one more text"
        assert vs.delete(ids=[docs[0].metadata["_id"]]) is True
        assert vs.client.count(store.collection_name).count == len(TEXTS)
    finally:
        vs.client.close()

    existing = QdrantVectorStore.from_existing_collection(
        embedding=embedding, collection_name=store.collection_name, url=server.url)
    try:
        assert existing.similarity_search(TEXTS[3], k=1)[0].page_content == TEXTS[3]
    finally:
        existing.client.close()


def test_force_recreate(server, embedding):
    name = f"lc_recreate_{uuid.uuid4().hex[:8]}"
    first = QdrantVectorStore.from_texts(
        TEXTS[:10], embedding=embedding, metadatas=METADATAS[:10], url=server.url, collection_name=name)
    try:
        assert first.client.count(name).count == 10
        second = QdrantVectorStore.from_texts(
            ["fresh start one", "fresh start two"], embedding=embedding,
            metadatas=[{"source": "fresh"}, {"source": "fresh"}], url=server.url, collection_name=name,
            force_recreate=True)
        try:
            assert second.client.count(name).count == 2
            docs = second.similarity_search(TEXTS[0], k=5)
            assert sorted(d.page_content for d in docs) == ["fresh start one", "fresh start two"]
            assert second.similarity_search("fresh start two", k=1)[0].page_content == "fresh start two"
        finally:
            second.client.close()
    finally:
        c = QdrantClient(url=server.url, prefer_grpc=False, check_compatibility=False)
        if c.collection_exists(name):
            c.delete_collection(name)
        c.close()
        first.client.close()
