"""`vecstash anchors`, `vecstash model` and `vecstash query --using` against a real server.

The commands' JSON output (--json) is checked against the REST answers, the files they write
against the server's anchors, and the exit status against the documented 0 / 1 / 2.
"""

from __future__ import annotations

import json
import subprocess
import uuid
from pathlib import Path

import httpx
import numpy as np
import pytest

from conftest import _binary

DIM = 16
MODEL_DIM = 24
N = 200


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(_binary()), "-q", *args], capture_output=True, text=True, timeout=120)


def ok_json(*args: str):
    r = run_cli(*args, "--json")
    assert r.returncode == 0, f"vecstash {' '.join(args)}: exit {r.returncode}\n{r.stderr}"
    return json.loads(r.stdout)


@pytest.fixture(scope="module")
def loaded(server):
    """A cosine collection of N points and the same points as a second model embeds them."""
    name = f"e2e_cli_{uuid.uuid4().hex[:8]}"
    rng = np.random.default_rng(77)
    x = rng.standard_normal((N, DIM)).astype(np.float32)
    rotation, _ = np.linalg.qr(rng.standard_normal((MODEL_DIM, DIM)))
    y = (x.astype(np.float64) @ rotation.T).astype(np.float32)
    with httpx.Client(base_url=server.url, timeout=60) as http:
        r = http.put(f"/collections/{name}", json={"vectors": {"size": DIM, "distance": "Cosine"}})
        assert r.status_code == 200, r.text
        points = [{"id": i, "vector": x[i].tolist()} for i in range(N)]
        r = http.put(f"/collections/{name}/points?wait=true", json={"points": points})
        assert r.status_code == 200, r.text
        yield name, x, y, rotation
        http.delete(f"/collections/{name}")


def test_anchors_models_and_queries(server, loaded, tmp_path: Path):
    name, x, y, rotation = loaded
    base = ["--url", server.url, "--collection", name]

    info = ok_json("anchors", "set", *base, "--strategy", "farthest", "--count", "40", "--seed", "3",
                   "--relative-kind", "i8")
    assert info["strategy"] == "farthest" and info["count"] == 40 and info["seed"] == 3
    assert info["relative"]["kind"] == "i8" and info["relative"]["rows"] == N
    ids_file, vectors_file = tmp_path / "ids.txt", tmp_path / "anchors.npy"
    shown = ok_json("anchors", "show", *base, "--ids-out", str(ids_file), "--vectors-out", str(vectors_file))
    assert shown == info
    ids = [int(line) for line in ids_file.read_text().split()]
    assert ids == info["ids"]
    with httpx.Client(base_url=server.url, timeout=60) as http:
        rest = http.get(f"/collections/{name}/anchors", params={"with_vectors": "true"}).json()["result"]
    np.testing.assert_allclose(np.load(vectors_file), np.asarray(rest["vectors"], dtype=np.float32), rtol=0, atol=0)

    # The model's embeddings in the anchor set's order, and keyed by an ids file in another order.
    np.save(tmp_path / "b.npy", y[ids])
    model = ok_json("model", "register", *base, "--name", "b", "--file", str(tmp_path / "b.npy"))
    assert model["dim"] == MODEL_DIM and model["method"] == "local" and model["procrustes_fit_cosine"] > 0.99
    assert model["local"]["neighbours"] >= 1 and model["local"]["fit_cosine"] > 0.99
    assert model["hubness"] == {"weight": 0.5, "neighbours": 10}
    reverse = ids[::-1]
    np.save(tmp_path / "b_rev.npy", y[reverse])
    (tmp_path / "rev.txt").write_text("# anchor ids of b_rev.npy's rows\n" + "\n".join(map(str, reverse)) + "\n")
    model2 = ok_json("model", "register", *base, "--name", "b2", "--file", str(tmp_path / "b_rev.npy"),
                     "--ids-file", str(tmp_path / "rev.txt"), "--method", "relative", "--lambda", "0.5",
                     "--local-neighbours", "7", "--local-temperature", "0.2", "--local-weight", "0.5",
                     "--hubness-weight", "0.8", "--hubness-neighbours", "5")
    assert model2["method"] == "relative" and model2["lambda"] == 0.5
    assert model2["local"]["neighbours"] == 7 and model2["local"]["temperature"] == 0.2
    assert model2["local"]["weight"] == 0.5
    assert model2["hubness"] == {"weight": 0.8, "neighbours": 5}
    assert abs(model2["procrustes_fit_cosine"] - model["procrustes_fit_cosine"]) < 1e-6
    assert [m["name"] for m in ok_json("model", "list", *base)["models"]] == ["b", "b2"]

    # A query of the second model finds what the collection's own query finds.
    q = x[11] + 0.05 * np.random.default_rng(78).standard_normal(DIM).astype(np.float32)
    qy = (q.astype(np.float64) @ rotation.T).tolist()
    own = ok_json("query", *base, "--vector", json.dumps(q.tolist()), "--limit", "3")
    for extra in ([], ["--method", "affine"], ["--method", "relative"], ["--method", "procrustes"],
                  ["--hubness-weight", "0"], ["--hubness-weight", "1.5"]):
        res = ok_json("query", *base, "--vector", json.dumps(qy), "--using", "b", "--limit", "3", *extra)
        assert res["points"][0]["id"] == own["points"][0]["id"], (extra, res, own)
    # Without the hubness correction the map alone gives the collection's own scores; with it, lower ones.
    plain = ok_json("query", *base, "--vector", json.dumps(qy), "--using", "b", "--limit", "3",
                    "--hubness-weight", "0")
    assert abs(plain["points"][0]["score"] - own["points"][0]["score"]) < 1e-3, (plain, own)
    hub = ok_json("query", *base, "--vector", json.dumps(qy), "--using", "b", "--limit", "3")
    assert hub["points"][0]["score"] < plain["points"][0]["score"] - 1e-3, (hub, plain)
    rel = ok_json("query", *base, "--vector", json.dumps(x[11].tolist()), "--using", "relative", "--limit", "3")
    assert rel["points"][0]["id"] == 11

    # Exit status: 2 for bad flags, 1 when the server says no.
    assert run_cli("anchors", "set", *base, "--strategy", "ids").returncode == 2
    assert run_cli("anchors", "set", *base, "--count", "8", "--ids", "1,2").returncode == 2
    assert run_cli("anchors", "show", *base, "--vectors-out", str(tmp_path / "x.txt")).returncode == 2
    assert run_cli("query", *base, "--vector", "[1, 2]", "--method", "affine").returncode == 2
    assert run_cli("query", *base, "--vector", "[1, 2]", "--hubness-weight", "0.5").returncode == 2
    assert run_cli("query", *base, "--vector", json.dumps(qy), "--using", "b", "--hubness-weight", "3").returncode == 2
    assert run_cli("query", *base, "--vector", json.dumps(qy), "--using", "relative",
                   "--hubness-weight", "0.5").returncode == 1
    assert run_cli("anchors").returncode == 2
    assert run_cli("model", "register", *base, "--name", "c", "--file", str(tmp_path / "b.npy"),
                   "--local-weight", "3").returncode == 2
    np.save(tmp_path / "short.npy", y[:5])  # 5 rows for 40 anchors
    assert run_cli("model", "register", *base, "--name", "c", "--file", str(tmp_path / "short.npy")).returncode == 1
    assert run_cli("query", *base, "--vector", json.dumps(qy), "--using", "nope").returncode == 1
    assert run_cli("model", "delete", *base, "--name", "nope").returncode == 1

    assert run_cli("model", "delete", *base, "--name", "b2").returncode == 0
    assert [m["name"] for m in ok_json("model", "list", *base)["models"]] == ["b"]
    assert run_cli("anchors", "delete", *base).returncode == 0
    assert run_cli("anchors", "show", *base).returncode == 1
    assert ok_json("model", "list", *base)["models"] == []
