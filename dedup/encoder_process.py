"""The encoder of a model file in a child process: `dedup index` decodes in its own threads while
the child imports torch and loads the weights.

Importing torch takes about a second and holds the importing interpreter's lock most of that time;
in the indexing process it would stall the decoding threads, which need that lock between their
decoding calls. The child takes input batches on its stdin and answers with their embeddings on
its stdout (raw uint8 pixels in, float32 rows out, no pickling), and ends when its stdin closes,
so it never outlives the process that started it.
"""
from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import BinaryIO

import numpy as np

import dedup
from dedup.config import ModelConfig
from dedup.errors import ModelError

HEADER = struct.Struct("<4I")  # a batch: images, height, width, channels
# The child's program: this very dedup first on its path, whatever the working folder holds.
BOOT = "import sys; sys.path.insert(0, sys.argv.pop(1)); from dedup.encoder_process import main; main()"


class EncoderProcess:
    """Embeds pixel batches with the model in `file`, loaded by a child process started now.

    `expect` is the identity and config the model's card gives (`dedup.loading.PendingModel`):
    the first `embed` waits for the child to load the weights and refuses a model that is not
    the one the card describes. `close()` ends the child."""

    def __init__(self, file: Path, expect: tuple[str, ModelConfig], threads: int):
        self.file, self.expect = Path(file), expect
        self._stderr = tempfile.TemporaryFile()
        package_root = str(Path(dedup.__file__).resolve().parent.parent)
        self._proc = subprocess.Popen([sys.executable, "-c", BOOT, package_root, str(self.file), str(threads)],
                                      stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._stderr)
        self._dim: int | None = None

    def embed(self, pixels: np.ndarray) -> np.ndarray:
        """(n, H, W, 3) uint8 → (n, dim) float32 unit vectors, as `dedup.embed.embed_pixels`."""
        if self._dim is None:
            self._dim = self._hello()
        pixels = np.ascontiguousarray(pixels, dtype=np.uint8)
        try:
            self._proc.stdin.write(HEADER.pack(*pixels.shape))
            self._proc.stdin.write(memoryview(pixels).cast("B"))
            self._proc.stdin.flush()
            out = _read_exact(self._proc.stdout, len(pixels) * self._dim * 4)
        except OSError:
            out = b""
        if len(out) != len(pixels) * self._dim * 4:
            raise self._failed("stopped while embedding")
        return np.frombuffer(out, np.float32).reshape(len(pixels), self._dim).copy()

    def close(self) -> None:
        """End the child and wait for it."""
        self._end()
        self._proc.stdout.close()
        self._stderr.close()

    def _end(self) -> None:
        """Close the child's stdin (it exits then) and wait for it."""
        try:
            self._proc.stdin.close()
        except OSError:
            pass
        try:
            self._proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()

    def __enter__(self) -> EncoderProcess:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _hello(self) -> int:
        """Wait for the child's first line (the loaded model's identity and config); its
        embedding size."""
        line = self._proc.stdout.readline()
        try:
            hello = json.loads(line)
            identity, config = hello["identity"], ModelConfig.from_dict(hello["config"])
        except (ValueError, KeyError, TypeError):
            raise self._failed("could not load it") from None
        if (identity, config) != self.expect:
            raise ModelError(f"the model card beside {str(self.file)!r} does not describe its weights; save the model again")
        return config.embedding_dim

    def _failed(self, what: str) -> ModelError:
        self._end()
        self._stderr.seek(0)
        lines = self._stderr.read().decode(errors="replace").strip().splitlines()
        why = lines[-1] if lines else f"exit status {self._proc.returncode}"
        return ModelError(f"the encoder process for {str(self.file)!r} {what}: {why}")


def _read_exact(stream: BinaryIO, n: int) -> bytes:
    """`n` bytes from `stream`, fewer only at its end."""
    parts, got = [], 0
    while got < n:
        chunk = stream.read(n - got)
        if not chunk:
            break
        parts.append(chunk)
        got += len(chunk)
    return b"".join(parts)


def serve(file: str, threads: int) -> int:
    """The child: load the model, say which it is, then embed batches until stdin closes."""
    out = os.fdopen(os.dup(1), "wb")  # the answers' own channel: anything printed goes to stderr
    os.dup2(2, 1)
    stdin = sys.stdin.buffer
    from dedup.errors import DedupError
    from dedup.model import load_model

    try:
        model = load_model(file)
    except DedupError as exc:
        print(exc, file=sys.stderr)
        return 2
    import torch

    from dedup.embed import embed_pixels

    torch.set_num_threads(threads)
    out.write((json.dumps({"identity": model.identity, "config": model.config.to_dict()}) + "\n").encode())
    out.flush()
    while head := _read_exact(stdin, HEADER.size):
        if len(head) < HEADER.size:
            return 1
        shape = HEADER.unpack(head)
        data = _read_exact(stdin, int(np.prod(shape)))
        if len(data) < int(np.prod(shape)):
            return 1
        out.write(embed_pixels(model, np.frombuffer(data, np.uint8).reshape(shape)).tobytes())
        out.flush()
    return 0


def main() -> None:
    """`BOOT`'s entry: `serve(MODEL, THREADS)` from the command line, then leave at once (every
    answer is flushed; tearing torch down would only delay the parent's wait)."""
    status = serve(sys.argv[1], int(sys.argv[2]))
    sys.stderr.flush()
    os._exit(status)
