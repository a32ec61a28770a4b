"""Hostile and broken input: the run completes, each file is indexed or skipped with a specific
reason, and nothing outside the index folder is written."""
from __future__ import annotations

import io
import json
import os
import struct
import zlib

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from dedup.cli import cli
from dedup.synth import jpeg_bytes, scene


def png_bomb() -> bytes:
    def chunk(tag, body):
        return struct.pack(">I", len(body)) + tag + body + struct.pack(">I", zlib.crc32(tag + body))

    ihdr = struct.pack(">IIBBBBB", 50_000, 50_000, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 1000)) + chunk(b"IEND", b"")


def save(im: Image.Image, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    im.save(buf, fmt, **kw)
    return buf.getvalue()


def snapshot(folder):
    out = {}
    for dirpath, dirs, files in os.walk(folder):
        for name in files + dirs:
            p = os.path.join(dirpath, name)
            out[p] = os.lstat(p).st_mtime_ns
    return out


@pytest.fixture()
def hostile(tmp_path):
    root = tmp_path / "catalog"
    root.mkdir()
    good = jpeg_bytes(scene(1))
    png = save(scene(2), "PNG")
    files = {
        "zero.jpg": b"",
        "truncated.jpg": good[: len(good) // 3],
        "truncated.png": png[: len(png) // 2],
        "text.jpg": b"just some text, not a JPEG\n",
        "page.png": b"<!doctype html><html><body>hello</body></html>",
        "bomb.png": png_bomb(),
        "one_pixel.png": save(Image.new("RGB", (1, 1), (255, 0, 0)), "PNG"),
        "extreme_aspect.png": save(Image.new("RGB", (4000, 2), (0, 255, 0)), "PNG"),
        "cmyk.jpg": save(Image.new("CMYK", (64, 64), (0, 255, 255, 0)), "JPEG"),
        "sixteen_bit.png": save(Image.fromarray(np.arange(4096, dtype=np.uint16).reshape(64, 64) * 16), "PNG"),
        "name with spaces.jpg": good,
        "ünïcødé ✓.jpg": jpeg_bytes(scene(3)),
        "new\nline.jpg": jpeg_bytes(scene(4)),
        "unreadable.jpg": jpeg_bytes(scene(5)),
    }
    pal = Image.new("P", (32, 32), 1)
    pal.putpalette([0, 0, 0, 255, 0, 0] + [0] * 762)
    files["palette_transparent.png"] = save(pal, "PNG", transparency=0)
    frames = [Image.new("RGB", (32, 32), c) for c in [(255, 0, 0), (0, 0, 255)]]
    buf = io.BytesIO()
    frames[0].save(buf, "GIF", save_all=True, append_images=frames[1:], duration=100)
    files["animated.gif"] = buf.getvalue()
    exif = Image.Exif()
    exif[0x0112] = 8
    files["rotated.jpg"] = save(scene(6), "JPEG", exif=exif)
    for name, data in files.items():
        (root / name).write_bytes(data)
    os.chmod(root / "unreadable.jpg", 0)
    os.symlink(root / "missing.jpg", root / "broken_link.jpg")
    (root / "loop").mkdir()
    os.symlink(root / "loop", root / "loop" / "self")
    return root


EXPECTED_SKIPS = {
    "zero.jpg": "empty file",
    "truncated.jpg": "cannot decode",
    "truncated.png": "cannot decode",
    "text.jpg": "not an image",
    "page.png": "not an image",
    "bomb.png": "bomb",
    "unreadable.jpg": "cannot read",
    "broken_link.jpg": "symlink",
    "loop/self": "symlink",
}


def test_hostile_catalog(hostile, tmp_path, monkeypatch):
    if os.geteuid() == 0:  # root reads mode-000 files; make the open fail the way it does for users
        real = os.open

        def fake_open(path, flags, *args, **kwargs):
            if str(path).endswith("unreadable.jpg"):
                raise PermissionError(13, "Permission denied")
            return real(path, flags, *args, **kwargs)

        monkeypatch.setattr(os, "open", fake_open)
    before = snapshot(tmp_path)
    report = tmp_path / "idx" / "report.json"
    result = CliRunner().invoke(cli, ["index", str(hostile), "--index", str(tmp_path / "idx"), "-q", "--report", str(report)])
    assert result.exit_code == 0, result.output
    after = snapshot(tmp_path)
    changed = {p for p in set(after) | set(before) if before.get(p) != after.get(p)}
    assert all(p.startswith(str(tmp_path / "idx")) for p in changed), changed - {str(tmp_path / "idx")}
    doc = json.loads(report.read_text())
    skipped = {s["path"]: s["reason"] for s in doc["skipped"]}
    assert set(skipped) == set(EXPECTED_SKIPS), skipped
    for path, words in EXPECTED_SKIPS.items():
        assert words in skipped[path], (path, skipped[path])
    indexed = doc["indexed"]
    assert indexed == 10  # every real image, whatever its mode or name
    dup = CliRunner().invoke(cli, ["query", str(hostile / "new\nline.jpg"), "--index", str(tmp_path / "idx"), "-k", "1", "--format", "json"])
    assert json.loads(dup.stdout)[0]["neighbors"][0] == {"path": "new\nline.jpg", "distance": 0.0}
