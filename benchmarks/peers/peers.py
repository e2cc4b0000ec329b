#!/usr/bin/env python3
"""vecstash against the libraries a user would pick instead, on one machine, with the same threads.

On glove100k (100,000 x 100 GloVe words, 1,000 held-out queries, cosine; rows and queries normalised):

  exact        batch of all queries: FAISS IndexFlatIP, IndexScalarQuantizer SQ8 / SQfp16, IndexBinaryFlat,
               USearch exact search (f32, f16, i8, b1), beside `vecstash bench search` exact scans
  approximate  FAISS IndexHNSWFlat, hnswlib, USearch HNSW (M = 32, efConstruction 200) over an ef sweep,
               beside vecstash's HNSW collections: best queries/s at recall@10 >= 0.90 / 0.95 / 0.99
  ingest       points/s into LanceDB (embedded, from PyPI) beside vecstash in process (bulk, synced) and
               over REST (`vecstash serve`, batches of 256, wait=true, synced) from Python and `vecstash ingest`

Writes a markdown report (stdout and --out) and the raw rows as CSV (--csv). See benchmarks/peers/README.md.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SECTIONS = ("exact", "approximate", "ingest")


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--threads", type=int, default=1, help="threads for every library and vecstash (0 = all cores) [1]")
    p.add_argument("--data-root", default=str(REPO.parent / "shared" / "data"),
                   help="folder holding glove100k/ [../shared/data next to the repository]")
    p.add_argument("--vecstash-bin", default=str(REPO / "build" / "tools" / "vecstash"),
                   help="the vecstash executable (copy it elsewhere so that rebuilds do not disturb a run)")
    p.add_argument("--out", default=str(REPO / "out" / "peers.md"), help="markdown report [out/peers.md]")
    p.add_argument("--csv", default=None, help="raw rows as CSV [the --out path with .csv]")
    p.add_argument("--sections", default=",".join(SECTIONS), help="comma-separated subset of exact,approximate,ingest")
    p.add_argument("--queries", type=int, default=1000, help="use the first N queries [1000]")
    p.add_argument("--ef", default="16,32,64,128,256,512", help="HNSW efSearch sweep")
    p.add_argument("--ef-construction", type=int, default=200, help="efConstruction / expansion_add of the peers [200]")
    p.add_argument("--m", type=int, default=32, help="HNSW M / USearch connectivity [32]")
    p.add_argument("--faiss-efc40", dest="faiss_default_efc", action="store_true",
                   help="also build FAISS HNSW with efConstruction 40 (FAISS's default; "
                        "about 35 s more at one thread)")
    p.add_argument("--slow-queries", type=int, default=200,
                   help="queries for FAISS's scalar-quantizer scans at d = 100, which run without SIMD at about 60 "
                        "queries/s per thread [200]; 0: all")
    p.add_argument("--vecstash-approximate", default="i8:HNSW32,e4m3:HNSW32",
                   help="vecstash approximate configurations KIND:INDEX")
    p.add_argument("--vecstash-kinds", default="f32,f16,e4m3,i8,b1", help="vecstash exact code kinds")
    p.add_argument("--min-time", type=float, default=0.5,
                   help="seconds to repeat each query batch, fastest run reported (as vecstash bench search) [0.5]")
    p.add_argument("--batch", type=int, default=256, help="points per REST upsert [256]")
    p.add_argument("--work-dir", default=None, help="scratch folder (databases, CSVs) [a new temp dir, removed after]")
    p.add_argument("--peers", default="faiss,hnswlib,usearch",
                   help="peer libraries of the exact and approximate sections (LanceDB is the ingest peer)")
    p.add_argument("--no-vecstash", action="store_true", help="development: run the peers only")
    p.add_argument("--vecstash-csv", action="append", default=[],
                   help="read vecstash rows from this `bench search` CSV instead of running it (development)")
    p.add_argument("--base-rows", type=int, default=0,
                   help="development: only the first N base rows, truth recomputed, vecstash search skipped")
    a = p.parse_args(argv)
    a.sections = [s for s in a.sections.split(",") if s]
    for s in a.sections:
        if s not in SECTIONS:
            p.error(f"unknown section {s!r}")
    a.ef = [int(x) for x in a.ef.split(",") if x]
    a.peers = [x for x in a.peers.split(",") if x]
    for x in a.peers:
        if x not in ("faiss", "hnswlib", "usearch"):
            p.error(f"unknown peer {x!r}")
    if a.csv is None:
        a.csv = str(Path(a.out).with_suffix(".csv"))
    return a


ARGS = parse_args() if __name__ == "__main__" else None
THREADS = (ARGS.threads if ARGS and ARGS.threads > 0 else os.cpu_count()) if ARGS else 1
# Thread pools are sized when the libraries load: set the variables before numpy, FAISS and LanceDB come in.
for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "BLIS_NUM_THREADS",
            "NUMEXPR_NUM_THREADS", "VECLIB_MAXIMUM_THREADS", "RAYON_NUM_THREADS", "LANCE_CPU_THREADS"):
    os.environ[var] = str(THREADS)

import csv  # noqa: E402
import gzip  # noqa: E402
import io  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import re  # noqa: E402
import resource  # noqa: E402
import shlex  # noqa: E402
import shutil  # noqa: E402
import signal  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import threading  # noqa: E402
from datetime import datetime, timezone  # noqa: E402
from importlib import metadata  # noqa: E402

import numpy as np  # noqa: E402

K = 10
WARMUP = 16  # queries of the untimed call before each timed configuration
TARGETS = (0.90, 0.95, 0.99)


# ---- data -------------------------------------------------------------------------------------------

def read_vecs(path: Path, dtype) -> np.ndarray:
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "rb") as f:
        raw = f.read()
    a = np.frombuffer(raw, dtype=np.int32)
    d = int(a[0])
    return a.reshape(-1, d + 1)[:, 1:].copy().view(dtype)


def normalise(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def recall_at_k(found: np.ndarray, truth: np.ndarray, k: int = K) -> float:
    found = np.asarray(found)[:, :k].astype(np.int64)
    truth = np.asarray(truth)[:, :k].astype(np.int64)
    hits = (found[:, :, None] == truth[:, None, :]).any(axis=2)
    return float(hits.sum()) / float(truth.shape[0] * k)


def fastest(min_time: float, fn):
    """Fastest of repeated runs, at least one, until min_time has passed (as vecstash bench search)."""
    best, total, result = float("inf"), 0.0, None
    while True:
        t0 = time.perf_counter()
        result = fn()
        s = time.perf_counter() - t0
        best = min(best, s)
        total += s
        if total >= min_time:
            return best, result


# ---- machine and load -------------------------------------------------------------------------------

def cpu_stat():
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    user, nice, system, idle, iowait, irq, softirq, steal = (v + [0] * 8)[:8]
    return {"busy": user + nice + system + irq + softirq, "steal": steal, "all": sum(v[:8])}


def own_cpu_s() -> float:
    s = resource.getrusage(resource.RUSAGE_SELF)
    c = resource.getrusage(resource.RUSAGE_CHILDREN)
    return s.ru_utime + s.ru_stime + c.ru_utime + c.ru_stime


class LoadWatch:
    """Samples the 1-minute load average and splits the machine's busy CPU time into ours and others'."""

    def __init__(self):
        self.samples = []
        self._stop = threading.Event()
        self.t0 = time.time()
        self.cpu0 = cpu_stat()
        self.own0 = own_cpu_s()
        self.uptime0 = uptime_line()
        self._th = threading.Thread(target=self._run, daemon=True)
        self._th.start()

    def _run(self):
        while not self._stop.wait(5.0):
            with open("/proc/loadavg") as f:
                self.samples.append(float(f.read().split()[0]))

    def finish(self):
        self._stop.set()
        self._th.join()
        wall = time.time() - self.t0
        cpu1 = cpu_stat()
        hz = os.sysconf("SC_CLK_TCK")
        busy = (cpu1["busy"] - self.cpu0["busy"]) / hz
        steal = (cpu1["steal"] - self.cpu0["steal"]) / hz
        own = own_cpu_s() - self.own0
        return {
            "wall_s": wall,
            "uptime_before": self.uptime0,
            "uptime_after": uptime_line(),
            "load1_max": max(self.samples) if self.samples else float("nan"),
            "load1_mean": float(np.mean(self.samples)) if self.samples else float("nan"),
            "cores_busy": busy / wall,
            "cores_ours": own / wall,
            "cores_others": max(0.0, busy - own) / wall,
            "cores_steal": steal / wall,
        }


def uptime_line() -> str:
    try:
        return subprocess.run(["uptime"], capture_output=True, text=True, check=True).stdout.strip()
    except Exception:  # noqa: BLE001
        with open("/proc/loadavg") as f:
            return "load average: " + " ".join(f.read().split()[:3])


def machine() -> dict:
    info = {"model": platform.processor() or "?", "cores": str(os.cpu_count()), "mem": "?"}
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
        fields = dict(line.split(":", 1) for line in out.splitlines() if ":" in line)
        fields = {k.strip(): v.strip() for k, v in fields.items()}
        info["model"] = fields.get("Model name", info["model"])
        fam, mod = fields.get("CPU family"), fields.get("Model")
        if fam:
            info["model"] += f" (family {fam}, model {mod})"
        info["cores"] = (f"{fields.get('CPU(s)', '?')} CPUs ({fields.get('Thread(s) per core', '?')} thread(s) per core), "
                         f"hypervisor {fields.get('Hypervisor vendor', 'none')}")
        flags = set(fields.get("Flags", "").split())
        info["isa"] = " ".join(f for f in ("avx2", "fma", "f16c", "avx512f", "avx512_vnni", "avx_vnni") if f in flags)
    except Exception:  # noqa: BLE001
        pass
    try:
        with open("/proc/meminfo") as f:
            kb = int(f.readline().split()[1])
        info["mem"] = f"{kb / 2**20:.1f} GiB"
    except Exception:  # noqa: BLE001
        pass
    try:
        info["os"] = Path("/etc/debian_version").read_text().strip()
        info["os"] = f"Debian {info['os']}, " + platform.platform()
    except Exception:  # noqa: BLE001
        info["os"] = platform.platform()
    return info


def versions() -> dict:
    v = {"python": platform.python_version()}
    for name in ("numpy", "faiss-cpu", "hnswlib", "usearch", "numkong", "lancedb", "pyarrow", "requests", "orjson"):
        try:
            v[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            v[name] = "not installed"
    return v


def binary_info(path) -> str:
    import hashlib
    try:
        p = Path(path)
        digest = hashlib.sha256(p.read_bytes()).hexdigest()[:12]
        mtime = datetime.fromtimestamp(p.stat().st_mtime, timezone.utc)
        return f"`{path}` (sha256 {digest}…, modified {mtime:%Y-%m-%d %H:%M} UTC)"
    except OSError as e:
        return f"`{path}` ({e})"


def git_head() -> str:
    try:
        out = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                             check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(REPO), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True).stdout.strip()
        return out + (" (with local changes)" if dirty else "")
    except Exception:  # noqa: BLE001
        return "?"


# ---- results ----------------------------------------------------------------------------------------

CSV_FIELDS = ["section", "system", "config", "code_bytes", "threads", "build_s", "ef", "qps", "recall",
              "points_per_s", "bytes_per_vector", "queries", "note"]


class Results:
    def __init__(self):
        self.rows = []
        self.commands = []
        self.notes = []

    def add(self, section, system, config, **kw):
        r = {"section": section, "system": system, "config": config, "threads": THREADS}
        r.update(kw)
        self.rows.append(r)
        bits = [f"{k}={fmt_num(v)}" for k, v in kw.items() if k in ("qps", "recall", "build_s", "points_per_s", "ef")]
        log(f"{section:<11} {system:<9} {config:<44} " + " ".join(bits))
        return r

    def find(self, section, system=None, pred=None):
        return [r for r in self.rows if r["section"] == section and (system is None or r["system"] == system)
                and (pred is None or pred(r))]


def log(msg):
    print(f"[{datetime.now():%H:%M:%S}] {msg}", file=sys.stderr, flush=True)


def fmt_num(v, digits=None):
    if v is None or v == "":
        return ""
    if isinstance(v, str):
        return v
    if isinstance(v, (int, np.integer)):
        return f"{v:,}"
    if digits is not None:
        return f"{v:,.{digits}f}"
    if abs(v) >= 100:
        return f"{v:,.0f}"
    if abs(v) >= 10:
        return f"{v:.1f}"
    return f"{v:.2f}"


def fq(v):
    return "" if v in (None, "") else f"{v:,.0f}"


def fr(v):
    return "" if v in (None, "") else f"{v:.4f}"


def fx(v):
    return "" if v in (None, "") or not np.isfinite(v) else f"{v:.2f}×"


# ---- vecstash bench search --------------------------------------------------------------------------

def run_vecstash_bench(args, work: Path, tag: str, kinds: str, approximate: str, res: Results) -> list[dict]:
    out_csv = work / f"vecstash-{tag}.csv"
    cmd = [args.vecstash_bin, "bench", "search", "--dataset", "glove100k", "--data-root", args.data_root,
           "--kinds", kinds, "--approximate", approximate, "--threads", str(args.threads), "--no-peers",
           "--queries", str(args.queries), "--min-time", str(args.min_time), "--work-dir", str(work / f"db-{tag}"),
           "--csv", str(out_csv)]
    if approximate:
        cmd += ["--ef", ",".join(str(e) for e in args.ef)]
        # The same graph build breadth as the peers (vecstash's engine defaults to FAISS's 40).
        cmd += ["--ef-construction", str(args.ef_construction)]
    res.commands.append(shlex.join(cmd))
    log("running " + shlex.join(cmd))
    t0 = time.perf_counter()
    p = subprocess.run(cmd, capture_output=True, text=True)
    log(f"vecstash bench search ({tag}) took {time.perf_counter() - t0:.0f} s, exit {p.returncode}")
    (work / f"vecstash-{tag}.log").write_text(p.stdout + p.stderr)
    if p.returncode != 0:
        raise RuntimeError(f"vecstash bench search failed ({p.returncode}):\n{p.stderr[-3000:]}")
    return read_vecstash_csv(out_csv)


def read_vecstash_csv(path) -> list[dict]:
    rows = []
    with open(path, newline="") as f:
        for r in csv.DictReader(f):
            for k in ("ingest_vps", "qps", "recall", "bytes_per_vector", "code_bytes", "id_bytes", "reopen_s"):
                r[k] = float(r[k]) if r.get(k) not in (None, "") else 0.0
            r["queries"] = int(r["queries"] or 0)
            rows.append(r)
    return rows


APPROX_RE = re.compile(r"^(\S+) (\S+) ef(\d+)( \+rescore)?$")


# ---- exact ------------------------------------------------------------------------------------------

def exact_peers(args, base, queries, truth, res: Results):
    import faiss

    faiss.omp_set_num_threads(THREADS)
    nq = queries.shape[0]

    def measure(system, config, code_bytes, build_s, fn, q, note="", nsub=nq):
        fn(q[:WARMUP])  # untimed: thread pools, buffers
        best, found = fastest(args.min_time, lambda: fn(q[:nsub]))
        res.add("exact", system, config, code_bytes=code_bytes, build_s=build_s, qps=nsub / best,
                recall=recall_at_k(found, truth[:nsub]), queries=nsub, note=note)

    mean = base.mean(axis=0)
    bits_b = np.packbits(base - mean > 0, axis=1)
    bits_q = np.packbits(queries - mean > 0, axis=1)
    if "faiss" in args.peers:
        exact_faiss(args, base, queries, bits_b, bits_q, measure)
    if "usearch" in args.peers:
        exact_usearch(base, queries, bits_b, bits_q, measure)


def exact_faiss(args, base, queries, bits_b, bits_q, measure):
    import faiss

    n, d = base.shape
    nq = queries.shape[0]
    default_blas = faiss.cvar.distance_compute_blas_threshold

    def faiss_search(index, q):
        return index.search(q, K)[1]

    # float32: FAISS answers a batch with BLAS (sgemm) only from distance_compute_blas_threshold queries on.
    t0 = time.perf_counter()
    flat = faiss.IndexFlatIP(d)
    flat.add(base)
    build = time.perf_counter() - t0
    try:
        faiss.cvar.distance_compute_blas_threshold = 20
        measure("faiss", "IndexFlatIP (BLAS)", 4 * d, build, lambda q: faiss_search(flat, q), queries,
                note=f"distance_compute_blas_threshold=20 (FAISS {faiss.__version__} default: {default_blas})")
        if default_blas > nq:
            faiss.cvar.distance_compute_blas_threshold = default_blas
            measure("faiss", "IndexFlatIP (default settings, no BLAS)", 4 * d, build,
                    lambda q: faiss_search(flat, q), queries,
                    note=f"distance_compute_blas_threshold={default_blas} > {nq} queries: no BLAS")
    finally:
        faiss.cvar.distance_compute_blas_threshold = default_blas
    del flat

    # Scalar quantizers. FAISS's SIMD scanners for them need d % 8 == 0: at d = 100 it falls back to
    # scalar code, so the same codes padded with zero dimensions (exactly the same inner products) are
    # measured too.
    dpad = (d + 7) // 8 * 8
    pads = [(d, base, queries)]
    if dpad != d:
        pads.append((dpad, np.pad(base, ((0, 0), (0, dpad - d))), np.pad(queries, ((0, 0), (0, dpad - d)))))
    for qt, name, width in ((faiss.ScalarQuantizer.QT_8bit, "SQ8", 1), (faiss.ScalarQuantizer.QT_fp16, "SQfp16", 2)):
        for dd, b, q in pads:
            t0 = time.perf_counter()
            sq = faiss.IndexScalarQuantizer(dd, qt, faiss.METRIC_INNER_PRODUCT)
            sq.train(b)
            sq.add(b)
            build = time.perf_counter() - t0
            label = f"IndexScalarQuantizer {name}" + ("" if dd == d else f", zero-padded to d={dd}")
            note = ("" if dd == d or d % 8 == 0 else "padding changes no inner product; it enables FAISS's SIMD path")
            nsub = nq
            if dd == d and d % 8:
                note = f"d={d} is not a multiple of 8: FAISS scans with its scalar (non-SIMD) code"
                if 0 < args.slow_queries < nq:
                    nsub = args.slow_queries
                    label += f" (first {nsub} queries)"
            measure("faiss", label, width * d, build, lambda qq, sq=sq: faiss_search(sq, qq), q, note, nsub)
            del sq

    # Binary: one bit per dimension, sign after centring on the base mean, Hamming distance.
    t0 = time.perf_counter()
    bflat = faiss.IndexBinaryFlat(bits_b.shape[1] * 8)
    bflat.add(bits_b)
    build = time.perf_counter() - t0
    measure("faiss", "IndexBinaryFlat (centred sign bits)", bits_b.shape[1], build,
            lambda q: faiss_search(bflat, q), bits_q, note=f"{d} bits padded to {bits_b.shape[1] * 8}")
    del bflat


def exact_usearch(base, queries, bits_b, bits_q, measure):
    from usearch.index import search as us_search

    d = base.shape[1]

    # USearch exact (brute force) search over the stored scalar type.
    def us(dataset, metric):
        return lambda q: us_search(dataset, q, K, metric, exact=True, threads=THREADS).keys

    measure("usearch", "exact f32 (ip)", 4 * d, 0.0, us(base, "ip"), queries)
    b16, q16 = base.astype(np.float16), queries.astype(np.float16)
    measure("usearch", "exact f16 (ip)", 2 * d, 0.0, us(b16, "ip"), q16)
    del b16, q16
    # USearch's own float -> int8 cast (index_plugins.hpp, cast_to_i8): x * 127 / |x|, truncated; checked
    # against Index(dtype="i8") below, so these are the codes a USearch user gets.
    b8, q8 = usearch_i8(base), usearch_i8(queries)
    check_usearch_i8_cast(base[:64], b8[:64])
    measure("usearch", "exact i8 (cos)", d, 0.0, us(b8, "cos"), q8, note="USearch's own cast: trunc(127 x/‖x‖)")
    measure("usearch", "exact i8 (ip)", d, 0.0, us(b8, "ip"), q8, note="USearch's own cast: trunc(127 x/‖x‖)")
    m8, mq8 = maxabs_i8(base), maxabs_i8(queries)
    measure("usearch", "exact i8 (cos), per-vector max-abs codes", d, 0.0, us(m8, "cos"), mq8,
            note="not USearch's cast: round(127 x / max(abs(x))), the full int8 range")
    del b8, q8, m8, mq8
    measure("usearch", "exact b1 (hamming, centred sign bits)", bits_b.shape[1], 0.0, us(bits_b, "hamming"), bits_q)


def usearch_i8(x: np.ndarray) -> np.ndarray:
    y = x / np.linalg.norm(x, axis=1, keepdims=True) * 127.0
    return np.clip(np.trunc(y), -127, 127).astype(np.int8)


def maxabs_i8(x: np.ndarray) -> np.ndarray:
    y = x * (127.0 / np.abs(x).max(axis=1, keepdims=True))
    return np.clip(np.rint(y), -127, 127).astype(np.int8)


def check_usearch_i8_cast(x, ours):
    from usearch.index import Index
    ix = Index(ndim=x.shape[1], metric="cos", dtype="i8")
    ix.add(np.arange(len(x)), x)
    theirs = np.asarray(ix.get(np.arange(len(x)), dtype="i8"))
    diff = np.abs(theirs.astype(int) - ours.astype(int)).max()
    if diff > 1:
        log(f"warning: USearch's stored i8 codes differ from trunc(127 x/‖x‖) by up to {diff}")


# ---- approximate ------------------------------------------------------------------------------------

def approximate_peers(args, base, queries, truth, res: Results):
    import faiss
    import hnswlib
    from usearch.index import Index

    faiss.omp_set_num_threads(THREADS)
    n, d = base.shape
    nq = queries.shape[0]
    keys = np.arange(n, dtype=np.int64)
    m, efc = args.m, args.ef_construction

    def sweep(system, config, set_ef, search, build_s, bytes_per_vector, code_bytes):
        for ef in args.ef:
            set_ef(ef)
            search(queries[:WARMUP])  # untimed
            best, found = fastest(args.min_time, lambda: search(queries))
            res.add("approximate", system, config, ef=ef, qps=nq / best, recall=recall_at_k(found, truth),
                    build_s=build_s, bytes_per_vector=bytes_per_vector, code_bytes=code_bytes, queries=nq)

    # FAISS HNSW (float32 vectors in the graph); also at FAISS's default efConstruction (40), which is
    # what vecstash's "HNSW32" collections are built with.
    for c in dict.fromkeys([efc] + ([40] if args.faiss_default_efc else [])) if "faiss" in args.peers else []:
        t0 = time.perf_counter()
        fh = faiss.IndexHNSWFlat(d, m, faiss.METRIC_INNER_PRODUCT)
        fh.hnsw.efConstruction = c
        fh.add(base)
        build = time.perf_counter() - t0
        log(f"faiss IndexHNSWFlat M{m} efC{c}: built in {build:.1f} s")
        size = faiss.serialize_index(fh).nbytes / n

        def fset(ef, fh=fh):
            fh.hnsw.efSearch = ef

        sweep("faiss", f"IndexHNSWFlat M{m} efC{c} f32", fset, lambda q, fh=fh: fh.search(q, K)[1], build, size,
              4 * d)
        del fh

    # hnswlib.
    if "hnswlib" in args.peers:
        t0 = time.perf_counter()
        hl = hnswlib.Index(space="ip", dim=d)
        hl.init_index(max_elements=n, ef_construction=efc, M=m)
        hl.set_num_threads(THREADS)
        hl.add_items(base, keys, num_threads=THREADS)
        build = time.perf_counter() - t0
        log(f"hnswlib M{m} efC{efc}: built in {build:.1f} s")
        sweep("hnswlib", f"M{m} efC{efc} f32 (ip)", hl.set_ef,
              lambda q: hl.knn_query(q, k=K, num_threads=THREADS)[0], build, hl.index_file_size() / n, 4 * d)
        del hl

    # USearch HNSW, float32 and its int8 storage (cosine on USearch's own cast).
    for dtype, metric, width in (("f32", "ip", 4), ("i8", "cos", 1)) if "usearch" in args.peers else ():
        t0 = time.perf_counter()
        ui = Index(ndim=d, metric=metric, dtype=dtype, connectivity=m, expansion_add=efc)
        ui.add(keys, base, threads=THREADS)
        build = time.perf_counter() - t0
        log(f"usearch HNSW {dtype} connectivity {m} expansion_add {efc}: built in {build:.1f} s")

        def uset(ef, ui=ui):
            ui.expansion_search = ef

        sweep("usearch", f"HNSW conn{m} expAdd{efc} {dtype} ({metric})", uset,
              lambda q, ui=ui: ui.search(q, K, threads=THREADS).keys, build, ui.memory_usage / n, width * d)
        del ui


def thresholds(points):
    """points: [(config, ef, qps, recall)] -> {target: best point with recall >= target, or None}."""
    out = {}
    for t in TARGETS:
        ok = [p for p in points if p[3] >= t]
        out[t] = max(ok, key=lambda p: p[2]) if ok else None
    return out


# ---- ingest -----------------------------------------------------------------------------------------

def ingest_lancedb(args, raw_base, work: Path, res: Results):
    import lancedb
    import pyarrow as pa

    n, d = raw_base.shape
    flat = pa.array(raw_base.reshape(-1), type=pa.float32())
    vectors = pa.FixedSizeListArray.from_arrays(flat, d)
    ids = pa.array(np.arange(n, dtype=np.int64))
    table = pa.table({"id": ids, "vector": vectors})

    db = lancedb.connect(str(work / "lancedb"))
    t0 = time.perf_counter()
    tbl = db.create_table("glove_bulk", data=table)
    s = time.perf_counter() - t0
    assert tbl.count_rows() == n
    idx = tbl.list_indices()
    res.add("ingest", "lancedb", f"create_table with all {n:,} rows (one write)", points_per_s=n / s, build_s=s,
            note=f"indexes after the write: {list(idx) or 'none'} (no vector index unless create_index is called)")

    t0 = time.perf_counter()
    tbl2 = db.create_table("glove_batches", data=table.slice(0, args.batch))
    for begin in range(args.batch, n, args.batch):
        tbl2.add(table.slice(begin, args.batch))
    s = time.perf_counter() - t0
    assert tbl2.count_rows() == n
    res.add("ingest", "lancedb", f"create_table + add() in batches of {args.batch}", points_per_s=n / s, build_s=s,
            note=f"{tbl2.version} table versions, one per add; no vector index")


def start_server(args, data_dir: Path, res: Results):
    port_file = data_dir.parent / "port"
    if port_file.exists():
        port_file.unlink()
    cmd = [args.vecstash_bin, "serve", "--data-dir", str(data_dir), "--port", "0", "--port-file", str(port_file),
           "--threads", str(args.threads), "--log-level", "warn"]
    res.commands.append(shlex.join(cmd))
    log("starting " + shlex.join(cmd))
    logf = open(data_dir.parent / "serve.log", "w")
    proc = subprocess.Popen(cmd, stdout=logf, stderr=subprocess.STDOUT)
    deadline = time.time() + 30
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"vecstash serve exited with {proc.returncode}: "
                               f"{(data_dir.parent / 'serve.log').read_text()[-2000:]}")
        if port_file.exists() and port_file.read_text().strip():
            return proc, int(port_file.read_text().strip())
        time.sleep(0.05)
    proc.kill()
    raise RuntimeError("vecstash serve did not write its port file within 30 s")


def ingest_rest(args, raw_base, base_file: Path, work: Path, res: Results):
    import orjson
    import requests

    n, d = raw_base.shape
    data_dir = work / "serve-data"
    proc, port = start_server(args, data_dir, res)
    url = f"http://127.0.0.1:{port}"
    try:
        s = requests.Session()
        create = {"vectors": {"size": d, "distance": "Cosine"}, "vecstash": {"codec": {"kind": "i8"}}}
        r = s.put(f"{url}/collections/peers_py", data=orjson.dumps(create),
                  headers={"Content-Type": "application/json"}, timeout=60)
        r.raise_for_status()

        t0 = time.perf_counter()
        bodies = []
        for begin in range(0, n, args.batch):
            end = min(n, begin + args.batch)
            pts = [{"id": i, "vector": raw_base[i]} for i in range(begin, end)]
            bodies.append(orjson.dumps({"points": pts}, option=orjson.OPT_SERIALIZE_NUMPY))
        encode_s = time.perf_counter() - t0
        mb = sum(len(b) for b in bodies) / 2**20

        target = f"{url}/collections/peers_py/points?wait=true"
        t0 = time.perf_counter()
        for body in bodies:
            r = s.put(target, data=body, headers={"Content-Type": "application/json"}, timeout=300)
            if r.status_code != 200:
                raise RuntimeError(f"upsert failed: {r.status_code} {r.text[:500]}")
        upload_s = time.perf_counter() - t0
        count = s.post(f"{url}/collections/peers_py/points/count", data=b'{"exact": true}',
                       headers={"Content-Type": "application/json"}, timeout=60).json()["result"]["count"]
        info = s.get(f"{url}/collections/peers_py", timeout=60).json()["result"]
        calibrated = info.get("config", {}).get("vecstash", {}).get("state", {}).get("calibrated")
        res.add("ingest", "vecstash", f"REST, Python requests (keep-alive), batches of {args.batch}, wait=true, synced",
                points_per_s=n / upload_s, build_s=upload_s,
                note=f"bodies encoded before timing (orjson, {mb:.0f} MiB in {encode_s:.1f} s; with it: "
                     f"{n / (upload_s + encode_s):,.0f} points/s); count {count}, calibrated {calibrated}")
        if count != n:
            raise RuntimeError(f"count after upload is {count}, expected {n}")

        # The same upload with vecstash's own client.
        cmd = [args.vecstash_bin, "ingest", "--url", url, "--collection", "peers_cli", "--file", str(base_file),
               "--create", "--kind", "i8", "--distance", "Cosine", "--batch", str(args.batch)]
        res.commands.append(shlex.join(cmd))
        log("running " + shlex.join(cmd))
        p = subprocess.run(cmd, capture_output=True, text=True)
        if p.returncode != 0:
            raise RuntimeError(f"vecstash ingest failed ({p.returncode}): {p.stderr[-2000:]}")
        m = re.search(r"ingested (\d+) points .* in ([\d.]+) s, (\d+) points/s", p.stdout)
        if not m:
            raise RuntimeError(f"cannot read the summary line of vecstash ingest: {p.stdout[-500:]}")
        res.add("ingest", "vecstash", f"REST, `vecstash ingest` (C++), batches of {args.batch}, wait=true, synced",
                points_per_s=float(m.group(3)), build_s=float(m.group(2)), note=m.group(0))
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            rc = proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            rc = "killed after 60 s"
    res.notes.append(f"`vecstash serve` exit status after SIGTERM: {rc}")
    log(f"vecstash serve exited with {rc}")
    if rc != 0:
        raise RuntimeError(f"vecstash serve did not exit 0 after SIGTERM: {rc}")


# ---- report -----------------------------------------------------------------------------------------

def md_table(header, rows, align=None):
    align = align or ["---"] + ["---:"] * (len(header) - 1)
    out = ["| " + " | ".join(header) + " |", "| " + " | ".join(align) + " |"]
    out += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return "\n".join(out)


def vs_rows(vrows, section_filter):
    return [r for r in vrows if section_filter(r)]


def exact_report(res: Results, vrows: list[dict]) -> list[str]:
    lines = ["## Exact scans (one batch of all queries)", ""]
    peers = res.find("exact")
    vx = [r for r in vrows if r["config"].endswith("exact") or "exact +rescore" in r["config"]
          or "exact, codes only" in r["config"]]
    rows = []
    for r in vx:
        rows.append(["vecstash", r["config"], fmt_num(r["code_bytes"]), fmt_num(r["bytes_per_vector"], 1), fq(r["qps"]),
                     fr(r["recall"]), ""])
    for r in peers:
        rows.append([r["system"], r["config"], fmt_num(r.get("code_bytes")), "", fq(r["qps"]), fr(r["recall"]),
                     r.get("note", "")])
    lines.append(md_table(["system", "configuration", "code B", "B/vec in RAM", "queries/s", "recall@10", "note"], rows,
                          ["---", "---", "---:", "---:", "---:", "---:", "---"]))
    lines += ["", "*code B*: bytes of one stored code; *B/vec in RAM*: vecstash's whole collection per point (codes, "
              "norms, float32 originals when kept, ids); the peers' flat indexes hold their codes and nothing else "
              "(ids are row numbers). "
              "vecstash's recall is against its own exact float32 top-10, the peers' against the shipped "
              "`glove100k_groundtruth_angular.ivecs` (the same neighbours: FAISS IndexFlatIP scores 1.0000 "
              "against it).", "",
              "What differs between the rows of one code width: vecstash's *+rescore* rows re-rank the top "
              "4 × k candidates with the float32 originals it keeps (so they need the originals in RAM; the "
              "*codes only* rows do not keep them). vecstash's b1 ranks by the float query against the "
              "reconstruction of the bits (asymmetric), FAISS and USearch by Hamming distance between sign "
              "bits, which is cheaper and less accurate. vecstash's i8 is calibrated per dimension (affine "
              "min/max); FAISS SQ8 is per-dimension min/max too; USearch i8 stores trunc(127 x/‖x‖). FAISS "
              "IndexFlatIP takes BLAS (sgemm) for a batch only from `distance_compute_blas_threshold` queries on: "
              "the *(BLAS)* row sets it to 20, the default of earlier FAISS releases (Debian's 1.7.3 among "
              "them).", ""]

    def by(cfg):
        for r in vx:
            if r["config"] == cfg:
                return r
        return None

    groups = [
        ("32-bit float", ["f32 exact"], lambda r: "IndexFlatIP" in r["config"] or "f32" in r["config"]),
        ("16-bit", ["f16 exact", "f16 exact +rescore"], lambda r: "fp16" in r["config"] or "f16" in r["config"]),
        ("8-bit", ["i8 exact", "i8 exact +rescore", "i8 exact, codes only", "e4m3 exact", "e4m3 exact +rescore"],
         lambda r: "SQ8" in r["config"] or " i8 " in r["config"]),
        ("1-bit", ["b1 exact", "b1 exact +rescore", "b1 exact, codes only"],
         lambda r: "Binary" in r["config"] or "b1" in r["config"]),
    ]
    lines += ["### Ratios, same code width: vecstash queries/s ÷ peer queries/s", ""]
    for title, vcfgs, pred in groups:
        ps = [r for r in peers if pred(r)]
        vs = [by(c) for c in vcfgs if by(c)]
        if not ps or not vs:
            continue
        header = [f"{title}: vecstash (q/s, recall)"] + [f"{p['system']} {p['config']} ({fq(p['qps'])}, {fr(p['recall'])})"
                                                        for p in ps]
        body = [[f"{v['config']} ({fq(v['qps'])}, {fr(v['recall'])})"] + [fx(v["qps"] / p["qps"]) for p in ps] for v in vs]
        lines += [md_table(header, body), ""]
        fastest_peer = max(ps, key=lambda p: p["qps"])
        fastest_v = max(vs, key=lambda v: v["qps"])
        lines.append(f"Fastest {title} peer: {fastest_peer['system']} {fastest_peer['config']} "
                     f"({fq(fastest_peer['qps'])} q/s, recall {fr(fastest_peer['recall'])}); fastest vecstash: "
                     f"{fastest_v['config']} ({fq(fastest_v['qps'])} q/s, recall {fr(fastest_v['recall'])}), "
                     f"**{fx(fastest_v['qps'] / fastest_peer['qps'])}** of it.")
        lines.append("")
    return lines


def approximate_report(res: Results, vrows: list[dict], ef_construction: int) -> list[str]:
    lines = ["## Approximate search (HNSW)", ""]
    series = {}  # (system, config) -> list of (config, ef, qps, recall)
    builds = {}
    for r in vrows:
        m = APPROX_RE.match(r["config"])
        if not m:
            continue
        kind, index, ef, rescore = m.group(1), m.group(2), int(m.group(3)), bool(m.group(4))
        cfg = f"{kind} {index}" + (" +rescore" if rescore else "")
        series.setdefault(("vecstash", cfg), []).append((cfg, ef, r["qps"], r["recall"]))
        if r["ingest_vps"] > 0:
            builds[("vecstash", f"{kind} {index}")] = (r["ingest_vps"], r["bytes_per_vector"], r["code_bytes"])
    for r in res.find("approximate"):
        series.setdefault((r["system"], r["config"]), []).append((r["config"], r["ef"], r["qps"], r["recall"]))
        builds[(r["system"], r["config"])] = (r["build_s"], r.get("bytes_per_vector"), r.get("code_bytes"))

    n = 100_000
    rows = []
    for (system, cfg), b in builds.items():
        if system == "vecstash":
            vps, bpv, cb = b
            rows.append([system, cfg + f" (efConstruction {ef_construction}, through the engine)",
                         fmt_num(n / vps, 1), fq(vps), fmt_num(bpv, 1), fmt_num(cb)])
        else:
            s, bpv, cb = b
            rows.append([system, cfg, fmt_num(s, 1), fq(n / s), fmt_num(bpv, 1) if bpv else "", fmt_num(cb)])
    lines += ["### Build", "", md_table(["system", "index", "build s", "vectors/s", "B/vec", "code B"], rows,
                                        ["---", "---", "---:", "---:", "---:", "---:"]), "",
              "vecstash's build time is its whole ingest into a fresh collection (RocksDB writes, calibration on the "
              "first 10,000 points, HNSW insertion); its B/vec is the collection in RAM (codes, graph with decoded "
              "vectors, float32 originals for rescoring, ids). Peers: FAISS's serialised index, hnswlib's index file "
              "size, USearch's memory_usage, each ÷ 100,000. vecstash's `HNSW32` collections are built with the "
              "same efConstruction as the peers (`vecstash bench search --ef-construction`); `--faiss-efc40` adds a "
              "FAISS index at FAISS's default of 40.", ""]

    efs = sorted({p[1] for pts in series.values() for p in pts})
    rows = []
    for (system, cfg), pts in series.items():
        by_ef = {p[1]: p for p in pts}
        rows.append([system, cfg] + [f"{fq(by_ef[e][2])} / {fr(by_ef[e][3])}" if e in by_ef else "" for e in efs])
    lines += ["### Sweep: queries/s / recall@10 per efSearch", "",
              md_table(["system", "configuration"] + [f"ef {e}" for e in efs], rows,
                       ["---", "---"] + ["---:"] * len(efs)), ""]

    # Best per system (across its configurations) at each recall target.
    per_system = {}
    for (system, cfg), pts in series.items():
        per_system.setdefault(system, []).extend(pts)
    best = {s: thresholds(p) for s, p in per_system.items()}

    def cell(p):
        return "not reached" if p is None else f"{fq(p[2])} ({p[0]}, ef {p[1]}, {fr(p[3])})"

    order = ["vecstash"] + [s for s in best if s != "vecstash"]
    rows = [[s] + [cell(best[s][t]) for t in TARGETS] for s in order if s in best]
    lines += ["### Best queries/s at a recall@10 target (the fastest ef that reaches it; nothing interpolated)", "",
              md_table(["system"] + [f"recall@10 ≥ {t:.2f}" for t in TARGETS], rows,
                       ["---"] + ["---"] * len(TARGETS)), ""]
    if "vecstash" in best:
        rows = []
        for s in order[1:]:
            cells = []
            for t in TARGETS:
                v, p = best["vecstash"][t], best[s][t]
                cells.append(fx(v[2] / p[2]) if v and p else "–")
            rows.append([f"vecstash ÷ {s}"] + cells)
        lines += [md_table(["ratio"] + [f"≥ {t:.2f}" for t in TARGETS], rows), ""]
    res.thresholds = best
    return lines


def ingest_report(res: Results, vrows: list[dict]) -> list[str]:
    lines = ["## Ingest: 100,000 GloVe vectors (100 dimensions)", ""]
    rows = []
    for r in vrows:
        if r["ingest"] in ("bulk", "synced") and not APPROX_RE.match(r["config"]):
            mode = ("in process, batches of 4,096, relaxed WAL sync" if r["ingest"] == "bulk"
                    else "in process, batches of 256, each fsynced")
            rows.append(["vecstash", f"{r['config']} ({mode})", fq(r["ingest_vps"]), ""])
    for r in res.find("ingest"):
        rows.append([r["system"], r["config"], fq(r["points_per_s"]), r.get("note", "")])
    lines += [md_table(["system", "path", "points/s", "note"], rows, ["---", "---", "---:", "---"]), ""]
    lance = res.find("ingest", "lancedb")
    mine = [r for r in res.find("ingest", "vecstash")]
    bulk = [r for r in vrows if r["ingest"] == "bulk" and r["config"] == "i8 exact"]
    synced = [r for r in vrows if r["ingest"] == "synced"]
    if lance:
        rows = []
        cands = [("in process bulk, i8 (originals kept)", bulk[0]["ingest_vps"] if bulk else None),
                 ("in process synced batches of 256, i8", synced[0]["ingest_vps"] if synced else None)]
        cands += [(r["config"], r["points_per_s"]) for r in mine]
        for name, v in cands:
            if v:
                rows.append([name, fq(v)] + [fx(v / lr["points_per_s"]) for lr in lance])
        if rows:
            lines += ["Ratios vecstash ÷ LanceDB:", "",
                      md_table(["vecstash path", "points/s"] + [f"÷ LanceDB {lr['config']} ({fq(lr['points_per_s'])})"
                                                                for lr in lance], rows), ""]
    return lines


# ---- main -------------------------------------------------------------------------------------------

def main(args):
    watch = LoadWatch()
    started = datetime.now(timezone.utc)
    data = Path(args.data_root) / "glove100k"
    base_file = data / "glove100k_base.fvecs.gz"
    raw_base = read_vecs(base_file, np.float32)
    raw_queries = read_vecs(data / "glove100k_query.fvecs", np.float32)[: args.queries]
    truth = read_vecs(data / "glove100k_groundtruth_angular.ivecs", np.int32)[: args.queries, :K]
    if args.base_rows:
        raw_base = raw_base[: args.base_rows]
    base, queries = normalise(raw_base), normalise(raw_queries)
    if args.base_rows:
        truth = np.argsort(-(queries @ base.T), axis=1)[:, :K]
        log(f"development run: {args.base_rows} base rows, truth recomputed, vecstash search skipped")
    log(f"glove100k: {base.shape[0]} x {base.shape[1]} base, {queries.shape[0]} queries, {THREADS} thread(s)")

    own_work = args.work_dir is None
    work = Path(tempfile.mkdtemp(prefix="vecstash-peers-")) if own_work else Path(args.work_dir)
    work.mkdir(parents=True, exist_ok=True)
    res = Results()
    res.thresholds = {}
    timings = {}
    vrows: list[dict] = []
    for path in args.vecstash_csv:
        vrows += read_vecstash_csv(path)
        res.notes.append(f"vecstash rows read from {path} (not run here)")
    run_vecstash = not args.vecstash_csv and not args.base_rows and not args.no_vecstash
    try:
        if "exact" in args.sections:
            t0 = time.perf_counter()
            exact_peers(args, base, queries, truth, res)
            if run_vecstash:
                vrows += run_vecstash_bench(args, work, "exact", args.vecstash_kinds, "", res)
            timings["exact"] = time.perf_counter() - t0
        if "approximate" in args.sections:
            t0 = time.perf_counter()
            approximate_peers(args, base, queries, truth, res)
            if run_vecstash:
                kinds = "" if "exact" in args.sections else "i8"
                vrows += run_vecstash_bench(args, work, "approximate", kinds, args.vecstash_approximate, res)
            timings["approximate"] = time.perf_counter() - t0
        if "ingest" in args.sections:
            t0 = time.perf_counter()
            if run_vecstash and "exact" not in args.sections and "approximate" not in args.sections:
                vrows += run_vecstash_bench(args, work, "ingest", "f32,i8", "", res)
            ingest_lancedb(args, raw_base, work, res)
            if not args.base_rows and not args.no_vecstash:
                ingest_rest(args, raw_base, base_file, work, res)
            timings["ingest"] = time.perf_counter() - t0
    finally:
        if own_work:
            shutil.rmtree(work, ignore_errors=True)
    load = watch.finish()

    # Dedupe vecstash rows (the approximate run repeats the synced ingest row): keep the first.
    seen, uniq = set(), []
    for r in vrows:
        if r["config"] in seen:
            continue
        seen.add(r["config"])
        uniq.append(r)
    vrows = uniq

    mach, ver = machine(), versions()
    lines = ["# vecstash against FAISS, hnswlib, USearch and LanceDB on glove100k", ""]
    lines += [f"Run {started:%Y-%m-%d %H:%M} UTC (repository at {git_head()}; the vecstash binary is described "
              f"below), {THREADS} thread(s) for every library, "
              f"{queries.shape[0]:,} queries, {base.shape[0]:,} × {base.shape[1]} base vectors (cosine: rows and "
              f"queries normalised), recall@{K}, queries/s the fastest of repeated batches of all queries "
              f"(--min-time {args.min_time}). Whole run: {load['wall_s'] / 60:.1f} min "
              f"({', '.join(f'{k} {v:.0f} s' for k, v in timings.items())}).", ""]
    lines += ["| machine | |", "|---|---|",
              f"| CPU | {mach['model']}; {mach['cores']}; ISA {mach.get('isa', '?')} |",
              f"| memory | {mach['mem']} |", f"| OS | {mach['os']} |",
              f"| load before | `{load['uptime_before']}` |", f"| load after | `{load['uptime_after']}` |",
              f"| during the run | 1-min load average mean {load['load1_mean']:.2f}, max {load['load1_max']:.2f}; "
              f"busy cores {load['cores_busy']:.2f}, of which this run {load['cores_ours']:.2f} and other processes "
              f"{load['cores_others']:.2f}; hypervisor steal {load['cores_steal']:.2f} |",
              f"| vecstash | {binary_info(args.vecstash_bin)} |",
              "| libraries | " + ", ".join(f"{k} {v}" for k, v in ver.items()) + " |",
              f"| threads | OMP/OpenBLAS/MKL/RAYON/LANCE_CPU_THREADS={THREADS}, faiss.omp_set_num_threads, hnswlib "
              f"set_num_threads/num_threads, USearch threads=, vecstash --threads {args.threads} |", ""]
    if load["cores_others"] > 0.2:
        lines += [f"**Other processes used {load['cores_others']:.2f} of the {os.cpu_count()} cores on average during "
                  f"this run**: timings are noisier than on an idle machine (single-threaded runs still had a core, "
                  f"but shared caches and memory bandwidth).", ""]
    lines += ["Commands:", "", "```sh", shlex.join([sys.executable, *sys.argv])] + res.commands + ["```", ""]
    if "exact" in args.sections:
        lines += exact_report(res, vrows)
    if "approximate" in args.sections:
        lines += approximate_report(res, vrows, args.ef_construction)
    if "ingest" in args.sections:
        lines += ingest_report(res, vrows)
    if res.notes:
        lines += ["## Notes", ""] + [f"- {n}" for n in res.notes] + [""]
    report = "\n".join(lines)

    print(report)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(report)
    Path(args.csv).parent.mkdir(parents=True, exist_ok=True)
    with open(args.csv, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=CSV_FIELDS, extrasaction="ignore")
        w.writeheader()
        for r in vrows:
            m = APPROX_RE.match(r["config"])
            section = "approximate" if m else ("ingest" if r["ingest"] == "synced" else "exact")
            w.writerow({"section": section, "system": "vecstash", "config": r["config"], "code_bytes": r["code_bytes"],
                        "threads": THREADS, "build_s": (100_000 / r["ingest_vps"]) if r["ingest_vps"] else "",
                        "ef": m.group(3) if m else "", "qps": r["qps"] or "", "recall": r["recall"] if r["qps"] else "",
                        "points_per_s": r["ingest_vps"] or "", "bytes_per_vector": r["bytes_per_vector"] or "",
                        "queries": r["queries"] or "", "note": "vecstash bench search"})
        for r in res.rows:
            w.writerow(r)
    log(f"wrote {args.out} and {args.csv} in {load['wall_s']:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main(ARGS))
