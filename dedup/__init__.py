"""dedup: find duplicate and near-duplicate images with a Siamese encoder and a FAISS index."""
from __future__ import annotations

__version__ = "0.1.0"
