"""`dedup serve` as a client meets it: a real server on a free local port, called over HTTP."""
from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import pytest
from click.testing import CliRunner

pytest.importorskip("fastapi")

from dedup.cli import cli  # noqa: E402
from dedup.indexer import index_catalog  # noqa: E402
from dedup.query import compare_images, query_images  # noqa: E402
from dedup.synth import jpeg_bytes, scene  # noqa: E402
from tests.test_hostile import png_bomb  # noqa: E402

TOKEN = "s3cret-token"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def multipart(fields: dict[str, bytes]) -> tuple[bytes, str]:
    boundary = uuid.uuid4().hex
    body = b""
    for name, data in fields.items():
        body += (f"--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"; filename=\"{name}.bin\"\r\n"
                 f"Content-Type: application/octet-stream\r\n\r\n").encode() + data + b"\r\n"
    return body + f"--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"


class Client:
    def __init__(self, port: int, token: str | None = TOKEN):
        self.base, self.token = f"http://127.0.0.1:{port}", token

    def call(self, path: str, fields: dict[str, bytes] | None = None, token: str | None = "default") -> tuple[int, dict]:
        body, kind = multipart(fields) if fields is not None else (None, None)
        req = urllib.request.Request(self.base + path, data=body, method="POST" if fields is not None else "GET")
        if kind:
            req.add_header("Content-Type", kind)
        token = self.token if token == "default" else token
        if token:
            req.add_header("Authorization", f"Bearer {token}")
        try:
            with urllib.request.urlopen(req, timeout=60) as resp:
                return resp.status, json.loads(resp.read())
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read())


@pytest.fixture(scope="module")
def served(planted, encoder_file, tmp_path_factory):
    root, _ = planted
    base = tmp_path_factory.mktemp("serve")
    cat, idx = base / "cat", base / "idx"
    shutil.copytree(root, cat)
    index_catalog(cat, idx, encoder_file)  # the index records the file: the server loads it by itself
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "dedup", "serve", "--index", str(idx), "--port", str(port),
                             "--token", TOKEN, "--max-upload", "200000"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    client = Client(port)
    client.pid = proc.pid  # one worker: uvicorn serves in this process
    deadline = time.time() + 120
    while time.time() < deadline:
        try:
            if client.call("/health")[0] == 200:
                break
        except OSError:
            time.sleep(0.2)
    else:
        proc.kill()
        pytest.fail(proc.stderr.read().decode())
    yield client, cat, idx
    proc.terminate()
    proc.wait(timeout=30)


def test_health(served, encoder):
    client, _, _ = served
    status, doc = client.call("/health")
    assert status == 200
    assert doc == {"status": "ok", "rows": 59, "generation": 1, "model": encoder.identity}


@pytest.mark.parametrize("verify", [False, True])
def test_query_returns_what_dedup_query_returns(served, encoder, verify):
    client, cat, idx = served
    image = cat / "copies" / "img_0001_copy0.jpg"
    status, doc = client.call(f"/query?k=5&verify={str(verify).lower()}", {"image": image.read_bytes()})
    assert status == 200, doc
    (expected,) = query_images(idx, [image], k=5, model=encoder, verify=verify)
    want = [{"path": n.path, "distance": n.distance, **({"same": n.same} if verify else {})} for n in expected.neighbors]
    assert [n["path"] for n in doc["neighbors"]] == [n["path"] for n in want]
    for got, exp in zip(doc["neighbors"], want):
        assert abs(got["distance"] - exp["distance"]) < 1e-5 and got.get("same") == exp.get("same")
    cut = (want[1]["distance"] + want[2]["distance"]) / 2  # between the second and the third neighbour
    status, doc = client.call(f"/query?k=5&threshold={cut}", {"image": image.read_bytes()})
    assert status == 200 and [n["path"] for n in doc["neighbors"]] == [n["path"] for n in want[:2]]


def test_compare_returns_what_dedup_compare_returns(served, encoder):
    client, cat, _ = served
    a, b = cat / "copies" / "img_0001_copy0.jpg", cat / "photos" / "img_0001.jpg"
    status, doc = client.call("/compare", {"a": a.read_bytes(), "b": b.read_bytes()})
    expected = compare_images(a, b, encoder)
    assert status == 200 and doc["same"] == expected.same and abs(doc["distance"] - expected.distance) < 1e-5
    assert set(doc) == {"distance", "cosine", "threshold", "same", "keypoints_agreeing", "probability", "told_apart", "plain_apart", "framed",
                         "same_bytes", "differs"}
    assert doc["differs"] == (expected.differs.to_dict() if expected.differs else None)


@pytest.mark.parametrize("case,status", [("text", 400), ("bomb", 400), ("truncated", 400), ("missing_field", 400),
                                         ("bad_k", 400), ("too_large", 413), ("no_token", 401), ("wrong_token", 401)])
def test_errors_are_json_and_the_service_stays_up(served, case, status):
    client, cat, _ = served
    good = (cat / "photos" / "img_0001.jpg").read_bytes()
    fields, path, token = {"image": good}, "/query", "default"
    if case == "text":
        fields = {"image": b"hello, not an image"}
    elif case == "bomb":
        fields = {"image": png_bomb()}
    elif case == "truncated":
        fields = {"image": good[: len(good) // 3]}
    elif case == "missing_field":
        fields = {"picture": good}
    elif case == "bad_k":
        path = "/query?k=0"
    elif case == "too_large":
        fields = {"image": good + b"\0" * 300_000}
    elif case == "no_token":
        token = None
    elif case == "wrong_token":
        token = "guess"
    got, doc = client.call(path, fields, token=token)
    assert got == status and isinstance(doc.get("error"), str) and doc["error"]
    assert client.call("/health")[0] == 200


def test_concurrent_queries_during_a_generation_switch(served, encoder):
    """Clients keep querying while `dedup index` commits a new generation: no request fails and
    the service moves to the new generation without a restart."""
    client, cat, idx = served
    image = (cat / "photos" / "img_0002.jpg").read_bytes()
    failures, done, stop = [], [0], threading.Event()

    def hammer():
        while not stop.is_set():
            status, doc = client.call("/query?k=3", {"image": image})
            if status != 200 or not doc["neighbors"]:
                failures.append((status, doc))
            done[0] += 1

    threads = [threading.Thread(target=hammer) for _ in range(4)]
    for t in threads:
        t.start()
    new = jpeg_bytes(scene(4242))
    (cat / "photos" / "brand_new.jpg").write_bytes(new)
    index_catalog(cat, idx, encoder)
    deadline = time.time() + 30
    while time.time() < deadline and client.call("/health")[1]["generation"] != 2:
        time.sleep(0.2)
    time.sleep(0.5)
    stop.set()
    for t in threads:
        t.join()
    assert not failures and done[0] > 10
    assert client.call("/health")[1] == {"status": "ok", "rows": 60, "generation": 2, "model": encoder.identity}
    status, doc = client.call("/query?k=1", {"image": new})
    assert doc["neighbors"][0] == {"path": "photos/brand_new.jpg", "distance": 0.0}


def test_a_public_address_needs_a_token(built_index):
    result = CliRunner().invoke(cli, ["serve", "--index", str(built_index), "--host", "0.0.0.0"])
    assert result.exit_code != 0 and "needs a token" in result.output and "Traceback" not in result.output


def test_openapi_page_lists_the_api(served):
    client, _, _ = served
    status, doc = client.call("/openapi.json", token=None)
    assert status == 200 and {"/health", "/query", "/compare"} <= set(doc["paths"])


def test_memory_does_not_grow_with_requests(served):
    """RSS after 300 more requests stays within 20 MB of RSS after the first 100 (warm)."""
    client, cat, _ = served
    image = (cat / "photos" / "img_0003.png").read_bytes()
    pid = client.pid
    for _ in range(100):
        client.call("/query?k=5", {"image": image})
    before = _rss(pid)
    for _ in range(300):
        client.call("/query?k=5", {"image": image})
    assert _rss(pid) - before < 20 * 1024


def _rss(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def test_a_page_query_gives_what_dedup_query_gives(served, encoder, tmp_path):
    """A picture pasted into a page: the service looks for it as `dedup query --verify` does."""
    from fakes import page_with
    from PIL import Image

    client, cat, idx = served
    page = tmp_path / "page.png"
    with Image.open(cat / "photos" / "img_0001.jpg") as photo:
        page_with(photo.convert("RGB").resize((224, 168))).save(page)
    status, doc = client.call("/query?k=5&verify=true", {"image": page.read_bytes()})
    assert status == 200, doc
    (expected,) = query_images(idx, [page], k=5, model=encoder, verify=True)
    assert [(n["path"], n.get("pasted", False), n["same"]) for n in doc["neighbors"]] == \
        [(n.path, n.pasted, n.same) for n in expected.neighbors]
    status, doc = client.call("/query?k=5&verify=true&pasted=false", {"image": page.read_bytes()})
    (plain,) = query_images(idx, [page], k=5, model=encoder, verify=True, pasted=False)
    assert status == 200 and [n["path"] for n in doc["neighbors"]] == [n.path for n in plain.neighbors]
    assert not any(n.get("pasted") for n in doc["neighbors"])


def test_the_service_keeps_the_keypoints_it_found_for_later_queries(series_index, monkeypatch):
    from dedup import keypoints as mechanism
    from dedup.service import Service

    cat, idx, _ = series_index  # indexed by a model with the pair check
    found = []
    real = mechanism.keypoints
    monkeypatch.setattr(mechanism, "keypoints", lambda *a, **kw: found.append(1) or real(*a, **kw))
    service = Service(idx)
    try:
        image = (cat / "item0_copy.jpg").read_bytes()
        first = service.query(image, 5, verify=True)
        looked = len(found)
        assert looked > 1 and service.query(image, 5, verify=True) == first
        assert len(found) == looked  # the upload's and its neighbours' keypoints were kept
    finally:
        service.close()
