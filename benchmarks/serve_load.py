"""Load on `dedup serve`: warm `POST /query` latency, throughput and memory, client on this machine.

    python -m benchmarks.serve_load [--rows 10000 1000000] [--requests 10000] [--clients 8]

For each size, writes an index of that many rows (the embeddings of 200 generated pictures and
random unit vectors around them, in the index format `dedup index` writes, for the shipped
encoder), starts `dedup serve` on a free loopback port, sends 200 warm-up requests and then
`--requests` queries (k=10) from `--clients` threads on keep-alive connections, each a JPEG of
one of 100 generated pictures, for each `--workers` count. Prints p50/p99 latency, queries/s,
the server's RSS (all its processes) after the warm-up and at the end, latency when the same
clients are paced to `--rate` queries/s together (arrivals as a service meets them), and the cost split of one query measured in-process (decode, embed,
search) against the single-client HTTP latency.
"""
from __future__ import annotations

import argparse
import http.client
import socket
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import numpy as np

from dedup.ann import build_index, choose_factory, load_index, save_index
from dedup.embed import embed_pixels
from dedup.images import HASH_NAME, decode
from dedup.manifest import FaissFile, Manifest, ModelRef
from dedup.model import load_model
from dedup.search import knn
from dedup.store import Row, ShardWriter
from dedup.synth import jpeg_bytes, scene


def write_index(folder: Path, rows: int, model) -> None:
    """`rows` embeddings crowded like real ones: 200 real pictures' embeddings, then unit vectors
    drawn around them (noise 0.1–0.8) and uniform ones."""
    folder.mkdir(parents=True, exist_ok=True)
    real = embed_pixels(model, np.stack([decode(jpeg_bytes(scene(10_000 + k)), model.config.image_size,
                                                framing=model.config.framing).pixels for k in range(200)]))
    rng = np.random.default_rng(0)
    emb = np.empty((rows, real.shape[1]), np.float32)
    emb[:200] = real
    around = rng.integers(0, 200, rows - 200)
    noise = rng.normal(size=(rows - 200, real.shape[1])).astype(np.float32)
    noise *= (rng.uniform(0.1, 0.8, rows - 200) / np.linalg.norm(noise, axis=1))[:, None]
    emb[200:] = real[around] + noise
    uniform = rng.random(rows) < 0.3
    uniform[:200] = False
    emb[uniform] = rng.normal(size=(int(uniform.sum()), real.shape[1]))
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    writer = ShardWriter(folder / "shards-0001", emb.shape[1], 100_000)
    for s in range(0, rows, 100_000):
        writer.add([Row(f"img/{k:08d}.jpg", 100_000, 0, f"{k:032x}", 640, 480) for k in range(s, min(s + 100_000, rows))],
                   emb[s : s + 100_000])
    factory, params = choose_factory(rows)
    save_index(build_index(emb, factory, params), folder, "index-0001.faiss")
    Manifest("/synthetic", ModelRef(model.identity, "default"), model.config.image_size, int(emb.shape[1]), HASH_NAME,
             tuple(writer.close()), FaissFile("index-0001.faiss", factory, params), threshold=model.threshold,
             verify=model.check, generation=1).save(folder)


def body_of(data: bytes) -> tuple[bytes, str]:
    b = uuid.uuid4().hex
    head = f'--{b}\r\nContent-Disposition: form-data; name="image"; filename="q.jpg"\r\nContent-Type: image/jpeg\r\n\r\n'
    return head.encode() + data + f"\r\n--{b}--\r\n".encode(), f"multipart/form-data; boundary={b}"


def load(port: int, bodies: list[tuple[bytes, str]], total: int, clients: int,
         rate: float | None = None) -> tuple[np.ndarray, float, int]:
    """Latencies (s) of `total` requests spread over `clients` threads, wall seconds, failures.
    Closed loop (each client sends as soon as its last answer came) unless `rate` (queries/s,
    all clients together) paces request n to start at n / rate."""
    lat: list[float] = []
    failures = [0]
    counter = iter(range(total))
    lock = threading.Lock()

    def worker():
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        while True:
            with lock:
                n = next(counter, None)
            if n is None:
                break
            body, kind = bodies[n % len(bodies)]
            if rate:
                time.sleep(max(0.0, start + n / rate - time.perf_counter()))
            t0 = time.perf_counter()
            conn.request("POST", "/query?k=10", body, {"Content-Type": kind})
            resp = conn.getresponse()
            resp.read()
            dt = time.perf_counter() - t0
            with lock:
                lat.append(dt)
                failures[0] += resp.status != 200
        conn.close()

    threads = [threading.Thread(target=worker) for _ in range(clients)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return np.array(lat), time.perf_counter() - start, failures[0]


def tree_rss_mb(pid: int) -> float:
    """RSS of the server and its worker processes together."""
    out = subprocess.run(["ps", "-o", "rss=", "--ppid", str(pid), "-p", str(pid)], capture_output=True, text=True).stdout
    return sum(int(v) for v in out.split()) / 1024


def cost_split(folder: Path, model, images: list[bytes], repeats: int = 200) -> dict[str, float]:
    """Milliseconds per query of each in-process stage, one image at a time."""
    index = load_index(folder, Manifest.load(folder))
    t = {"decode": 0.0, "embed": 0.0, "search": 0.0}
    for n in range(repeats):
        t0 = time.perf_counter()
        px = decode(images[n % len(images)], model.config.image_size, framing=model.config.framing).pixels
        t1 = time.perf_counter()
        emb = embed_pixels(model, px[None])
        t2 = time.perf_counter()
        knn(index, emb, 10)
        t3 = time.perf_counter()
        t["decode"] += t1 - t0
        t["embed"] += t2 - t1
        t["search"] += t3 - t2
    return {k: 1000 * v / repeats for k, v in t.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, nargs="+", default=[10_000, 1_000_000])
    ap.add_argument("--requests", type=int, default=10_000)
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--rate", type=float, default=100.0, help="offered queries/s of the paced run")
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2], help="server processes (`dedup serve --workers`)")
    ap.add_argument("--out", type=Path, default=Path("benchmarks/out/serve"))
    args = ap.parse_args()
    model = load_model()
    images = [jpeg_bytes(scene(10_000 + k)) for k in range(100)]
    bodies = [body_of(d) for d in images]
    print("| rows | workers | clients | requests | p50 ms | p99 ms | queries/s | failed | RSS after warm-up MB | RSS at end MB "
          "| 1-client p50 ms | decode ms | embed ms | search ms | HTTP + framework ms | paced p50 ms | paced p99 ms |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for rows, workers in ((r, w) for r in args.rows for w in args.workers):
        folder = args.out / f"index-{rows}"
        if not (folder / "manifest.json").exists():
            write_index(folder, rows, model)
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        proc = subprocess.Popen([sys.executable, "-m", "dedup", "serve", "--index", str(folder), "--port", str(port),
                                 "--workers", str(workers)],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            for _ in range(600):
                try:
                    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
                    conn.request("GET", "/health")
                    if conn.getresponse().status == 200:
                        break
                except OSError:
                    time.sleep(0.2)
            load(port, bodies, 200, args.clients)
            warm_rss = tree_rss_mb(proc.pid)
            single, _, _ = load(port, bodies, 300, 1)
            lat, wall, failed = load(port, bodies, args.requests, args.clients)
            end_rss = tree_rss_mb(proc.pid)
            paced, _, paced_failed = load(port, bodies, min(args.requests, int(30 * args.rate)), args.clients, args.rate)
        finally:
            proc.terminate()
            proc.wait(timeout=30)
        split = cost_split(folder, model, images)
        p50_single = 1000 * float(np.percentile(single, 50))
        http_ms = p50_single - sum(split.values())
        print(f"| {rows:,} | {workers} | {args.clients} | {args.requests:,} | {1000 * np.percentile(lat, 50):.1f} | "
              f"{1000 * np.percentile(lat, 99):.1f} | {len(lat) / wall:.0f} | {failed} | {warm_rss:.0f} | {end_rss:.0f} | "
              f"{p50_single:.1f} | {split['decode']:.2f} | {split['embed']:.2f} | {split['search']:.2f} | {http_ms:.1f} | "
              f"{1000 * np.percentile(paced, 50):.1f} | {1000 * np.percentile(paced, 99):.1f}{' (failed)' if paced_failed else ''} |",
              flush=True)


if __name__ == "__main__":
    main()
