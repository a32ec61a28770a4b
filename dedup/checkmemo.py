"""The pair check's work on the pairs it has seen, kept in the index folder, so that a later
find-duplicates or review on the same index matches keypoints and looks for a differing detail
only for pairs it has not seen (new files, another threshold).

What is kept for a pair depends only on its two check pictures and on the check's code and
settings: its keypoint matches at each size they were taken (`dedup.keypoints.Matches`),
whether `dedup.details` tells the two apart, and which of the two is a composite the other was
pasted onto (`dedup.seams`). The verdict is not kept, since it also depends on
the rest of the catalog (background distances, pairs told apart through a copy), and the pairs
a run rules out unmatched (`dedup.keypoints.RULED_OUT`) are ruled out again, so a run gives what
it would give without the memo. An entry's key hashes both pictures' content hashes (in the
pair's order) and the settings; the folder is stamped with the digest of the modules that
compute the entries and the OpenCV version, and another digest discards them all. After a run
each file of `FOLDER` holds the entries it made and the older ones whose two pictures are still
in the index. A file that cannot be read is ignored; when the folder cannot be written, the run
goes on without it. The wrapped functions are given `KEPT_EVERY` pairs or pictures at a time (a
keypoint matcher fills its answers in place and says when a block is done), so a run interrupted
in the middle of a pass keeps what it finished (`PairChecks.saving`), and a run killed keeps what
it had done when it last saved (`PairChecks.checkpoint`, after a block once a minute has passed).

The pairs the keypoint search voted for (`dedup.votes`) depend on every picture of the index, so
they are kept whole (`VOTES`) with a digest of the index's rows, the code and the settings, and
used only while all three are the same. The descriptors each picture gave the search are kept
with the picture (`DESCRIPTORS`), and the search's list of each (`LISTS`), both in pieces of
`DESCRIPTOR_PIECE`, so a run after pictures were added or removed finds keypoints and lists only
for the new ones before it votes again.

Pairs between this index and a reference index (`find-duplicates --against`) are kept apart, in
`FOLDER/AGAINST`, and after a run hold those whose picture is still in this index and whose
partner is in the reference the run compared with.
"""
from __future__ import annotations

import hashlib
import logging
import time
import zipfile
from contextlib import contextmanager
from functools import cache, cached_property
from pathlib import Path
from typing import Callable, Iterator, Sequence

import numpy as np

from dedup.atomic import atomic_write
from dedup.config import Framing
from dedup.details import Framer, Teller
from dedup.errors import DedupError
from dedup.indexdir import ensure_claim, index_lock
from dedup.keypoints import DESCRIPTOR_BYTES, RULED_OUT, Matcher, Matches, Pictures
from dedup.memotable import Table
from dedup.pairs import Pairs
from dedup.parts import PartFinder
from dedup.policy import SECOND_SET
from dedup.seams import Judge
from dedup.votes import PROBE, Assigner, Describer, nearest_lists

log = logging.getLogger(__name__)

FOLDER = "pair-checks"
AGAINST = "against"  # in FOLDER: the entries of pairs with a reference index's pictures
PARTS = "parts"  # the files of the pictures pasted into the index's pictures, and of their windows (entries: a = b)
PASTED = "pasted"  # in FOLDER: the entries of pairs of a picture pasted into one of the index's with its pictures
CATALOG = "catalog"  # in FOLDER/AGAINST: the reference index's pictures' own entries (windows, descriptors)
DESCRIPTORS = "descriptors"  # the files of the keypoint search's descriptors of the index's pictures (entries: a = b)
LISTS = "lists"  # the files of the search's nearest lists of those descriptors (entries: a = b)
OWN = (PARTS, DESCRIPTORS, LISTS)  # the files whose entries each concern one picture of the index
ALIKE = "alike"  # `PairChecks.teller`'s kind for `dedup.details.alike`
TINY = "tiny"  # ... and for `dedup.details.tiny_told_apart`
VOTES = "votes.npz"  # in FOLDER: the pairs voted for (`dedup.votes`), for the index's rows as they were
STAMP = "code"  # in each memo folder: the digest of the code its entries come from (`_code`)
_PAIR = [("key", "<u8"), ("a", "<u4"), ("b", "<u4")]  # a, b: the low 32 bits of each picture's `row_keys`
TABLES = {  # file in FOLDER: its entries (each file is whole by itself, so files of two runs mix safely)
    "matches.npy": np.dtype(_PAIR + [("inliers", "<i4"), ("sparser", "<i4")]),
    "maps.npy": np.dtype(_PAIR + [("map", "<f4", (2, 3))]),  # where the keypoints agree on a map; every framed pair's (NaN: none)
    "apart.npy": np.dtype(_PAIR + [("apart", "i1")]),
    "composite.npy": np.dtype(_PAIR + [("which", "i1")]),  # which picture is a composite the other was pasted onto (`dedup.seams`)
    f"{PARTS}.npy": np.dtype(_PAIR + [("found", "i1")]),  # a picture looked at: its vectors (`dedup.parts`, `dedup.windows`)
}
STORED_BLOCK = 1 << 16  # rows whose kept vectors `PairChecks.stored_parts` reads at a time
DESCRIPTOR_PIECE = 50  # descriptors an entry of a descriptor file holds, at most
CHECKPOINT_AFTER = 60.0  # seconds since the memo was last saved after which a run saves it after a block (`checkpoint`)
CHECKPOINT_SHARE = 0.1  # ... and at most this share of the time goes to those saves (a large memo is saved less often)
KEPT_EVERY = 2048  # pictures or pairs a remembered function is given at a time: an interrupted run keeps the blocks done
MODULES = ("dedup.checkmemo", "dedup.keypoints", "dedup.details", "dedup.pictures", "dedup.framing", "dedup.parts",
           "dedup.windows", "dedup.turns", "dedup.seams", "dedup.votes")  # the code an entry comes from, and how it is keyed


def parts_table(dim: int) -> tuple[str, np.dtype]:
    """The file in FOLDER of the vectors of `dim` numbers of the pictures pasted into the index's
    pictures (`dedup.parts`), and its entries: one a picture that has one (a = b)."""
    return f"{PARTS}-{dim}.npy", np.dtype(_PAIR + [("vector", "<f4", (dim,))])


def descriptors_table(keep: int) -> tuple[str, np.dtype]:
    """The file in FOLDER of the keypoint search's descriptors (`dedup.votes`), at most `keep` a
    picture, and its entries: a picture's descriptors in pieces of `descriptor_piece(keep)` (a =
    b), each with the picture's count of descriptors, the last padded."""
    return f"{DESCRIPTORS}-{keep}.npy", np.dtype(_PAIR + [("count", "<i2"),
                                                          ("descriptors", "u1", (descriptor_piece(keep), DESCRIPTOR_BYTES))])


def lists_table(keep: int, lists: int) -> tuple[str, np.dtype]:
    """The file in FOLDER of the nearest of `lists` shipped lists (`dedup.votes.nearest_lists`)
    of each descriptor of `descriptors_table(keep)`, and its entries, in the same pieces."""
    return f"{LISTS}-{keep}-{lists}.npy", np.dtype(_PAIR + [("count", "<i2"), ("lists", "<u2", (descriptor_piece(keep), PROBE))])


def descriptor_piece(keep: int) -> int:
    """Descriptors an entry of `descriptors_table(keep)` holds: pictures have fewer than `keep`
    (a flat drawing a few dozen), so padding each to `keep` would waste a fifth of the file."""
    return min(keep, DESCRIPTOR_PIECE)


def parts_version(folder: Path, dim: int) -> tuple:
    """What changes when the vectors the memo of the index in `folder` keeps of its pictures
    (`PairChecks.parts`, for `dim` numbers) change: their files' identities, times and sizes."""
    return _files_version(Path(folder) / FOLDER, (f"{PARTS}.npy", parts_table(dim)[0], STAMP))


def descriptors_version(folder: Path) -> tuple:
    """What changes when the descriptors the memo of the index in `folder` keeps of its pictures
    (`PairChecks.descriptors`) change: their files' names, identities, times and sizes."""
    at = Path(folder) / FOLDER
    return _files_version(at, (*sorted(p.name for p in at.glob(f"{DESCRIPTORS}-*.npy")), STAMP))


def _files_version(at: Path, names: Sequence[str]) -> tuple:
    version = []
    for name in names:
        try:
            st = (at / name).stat()
        except OSError:
            version.append(None)
            continue
        version.append((name, st.st_ino, st.st_mtime_ns, st.st_size))
    return tuple(version)


@cache
def _code() -> bytes:
    """The source of `MODULES` and the OpenCV version: what an entry is valid for."""
    import importlib

    import cv2

    h = hashlib.sha256(cv2.__version__.encode())
    for name in MODULES:
        h.update(Path(importlib.import_module(name).__file__).read_bytes())
    return h.digest()


def _salt(*settings: object) -> np.uint64:
    h = hashlib.blake2b(_code() + repr(settings).encode(), digest_size=8)
    return np.uint64(int.from_bytes(h.digest(), "little"))


def _mix(x: np.ndarray) -> np.ndarray:
    """splitmix64's finaliser, elementwise on uint64 (wrapping)."""
    with np.errstate(over="ignore"):
        x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return x ^ (x >> np.uint64(31))


def row_keys(content_hashes: Sequence[str]) -> np.ndarray:
    """Each row's content hash as 64 bits (its first 16 hex digits; a hash of it otherwise)."""
    def bits(h: str) -> int:
        try:
            return int(h[:16], 16)
        except ValueError:
            return int.from_bytes(hashlib.blake2b(str(h).encode(), digest_size=8).digest(), "little")

    return np.array([bits(h) for h in content_hashes], np.uint64)


class PairChecks:
    """The memo of one index folder for one run: `matcher` and `teller` wrap the check's
    functions, `save` writes what the run made and keeps what still concerns the index's
    pictures."""

    def __init__(self, folder: Path, content_hashes: Sequence[str], reference: Sequence[str] | None = None,
                 place: str = AGAINST, read_only: bool = False):
        """The memo of the index in `folder`, whose rows have `content_hashes`; nothing is read
        until a pair is looked up, so a run without the pair check pays nothing for it. With
        `reference` (the content hashes of another index's rows), the memo of pairs between the
        two: a pair's second row is the reference's row `j - policy.SECOND_SET`. A `read_only`
        memo (another index's) gives its entries and neither makes nor saves any."""
        self.folder, self.content_hashes, self.reference = Path(folder), content_hashes, reference
        self.read_only = read_only
        self.at = self.folder / FOLDER / place if reference is not None else self.folder / FOLDER
        self.checked = False
        self._voted: tuple[str, Pairs] | None = None
        self._saved_at, self._save_cost = _now(), 0.0

    @cached_property
    def rows(self) -> np.ndarray:
        """`row_keys` of the index's rows."""
        return row_keys(self.content_hashes)

    @cached_property
    def reference_rows(self) -> np.ndarray:
        """`row_keys` of the reference's rows (the index's own without a reference)."""
        return self.rows if self.reference is None else row_keys(self.reference)

    @cached_property
    def stamped(self) -> bool:
        """Whether the memo's entries come from this code (`_code`)."""
        try:
            return (self.at / STAMP).read_text().strip() == _code().hex()
        except OSError:
            return False

    @cached_property
    def tables(self) -> dict[str, Table]:
        return {name: Table(self.at / name, dtype, self.stamped) for name, dtype in TABLES.items()}

    def _table(self, name: str, dtype: np.dtype) -> Table:
        """The memo's file `name`, of entries of `dtype`, opened once a run (opening one reads its keys)."""
        if name not in self.tables:
            self.tables[name] = Table(self.at / name, dtype, self.stamped)
        return self.tables[name]

    def _keys(self, i: np.ndarray, j: np.ndarray, *settings: object) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Each pair's key, and the low 32 bits of both pictures' row keys."""
        self.checked = True
        j = np.asarray(j) if self.reference is None else np.asarray(j) - SECOND_SET
        if len(j) and j.min() < 0:
            raise ValueError("a pair against a reference needs its second row at SECOND_SET + row")
        a, b = self.rows[np.asarray(i)], self.reference_rows[j]
        return _mix(a ^ _mix(b ^ _salt(*settings))), _low(a), _low(b)

    def matcher(self, match: Matcher) -> Matcher:
        """`match` for the pairs without an entry; entries for the rest (ruled out again where
        the run's `worth` rules them out), and new entries for the pairs it matched."""

        def remembered(pairs: Pairs, pictures: Pictures, side: int = 256, count: int = 500, workers: int = 2, **kwargs):
            matches, maps = self.tables["matches.npy"], self.tables["maps.npy"]
            keys, a, b = self._keys(pairs.i, pairs.j, "match", side, count, kwargs.get("corner"))
            hit, entries = matches.find(keys)
            out = Matches.empty(len(pairs))
            ks = np.flatnonzero(hit)
            out.inliers[ks], out.sparser[ks] = entries["inliers"], entries["sparser"]
            with_map, mapped = maps.find(keys[ks])
            out.maps[ks[with_map]] = mapped["map"]
            worth = kwargs.get("worth")
            if len(ks):  # the run's `worth` rules out what it rules out; what it does not is matched
                keep = np.ones(len(ks), bool) if worth is None else np.asarray(worth(ks, entries["sparser"]), bool)
                out.inliers[ks[~keep]], out.maps[ks[~keep]] = RULED_OUT, np.nan
                hit[ks[keep & (entries["inliers"] == RULED_OUT)]] = False
            todo = np.flatnonzero(~hit)
            if len(todo):
                if worth is not None:
                    kwargs["worth"] = worth.subset(todo)
                found, added = Matches.empty(len(todo)), np.zeros(len(todo), bool)

                def add(ks: np.ndarray) -> None:  # the entries of pairs `todo[ks]` matched (or ruled out) and not yet added
                    ks = np.asarray(ks)
                    ks = ks[~added[ks] & found.readable[ks]]
                    added[ks] = True
                    done = todo[ks]
                    out.put(done, found[ks])
                    self.tables["matches.npy"].add(keys[done], a[done], b[done], inliers=out.inliers[done], sparser=out.sparser[done])
                    mapped = done[np.isfinite(out.maps[done]).all(axis=(1, 2))]
                    self.tables["maps.npy"].add(keys[mapped], a[mapped], b[mapped], map=out.maps[mapped])

                def block_done(ks: np.ndarray) -> None:
                    add(ks)
                    self.checkpoint()

                try:
                    found = match(pairs[todo], pictures, side, count, workers, into=found, done=block_done, **kwargs)
                finally:  # also when interrupted: the pairs matched so far are kept
                    add(np.arange(len(todo)))
            return out

        return remembered

    def teller(self, tell: Teller, kind: str = "apart") -> Teller:
        """`tell` (a yes or no of a pair laid over by its map: told apart, `dedup.details.told_apart`,
        or another such judgement that `kind` names, keyed apart) for the pairs without an entry;
        entries for the rest."""

        def remembered(i: np.ndarray, j: np.ndarray, maps: np.ndarray, pictures: Pictures, workers: int = 2) -> np.ndarray:
            return self._judged("apart.npy", "apart", kind, tell, np.dtype(bool), False, i, j, maps, pictures, workers)

        return remembered

    def framer(self, frame: Framer) -> Framer:
        """`frame` (`dedup.details.framed_maps`) for the pairs without an entry; entries for the rest."""

        def remembered(i: np.ndarray, j: np.ndarray, pictures: Pictures, workers: int = 2) -> np.ndarray:
            return self._judged("maps.npy", "map", "framed", lambda i, j, _, pictures, workers: frame(i, j, pictures, workers),
                                np.dtype(np.float32), np.nan, i, j, np.zeros(len(i)), pictures, workers, shape=(2, 3))

        return remembered

    def judge(self, which: Judge) -> Judge:
        """`which` (`dedup.seams.which_composite`) for the pairs without an entry; entries for the rest."""

        def remembered(i: np.ndarray, j: np.ndarray, maps: np.ndarray, pictures: Pictures, workers: int = 2) -> np.ndarray:
            return self._judged("composite.npy", "which", "composite", which, np.dtype(np.int8), -1, i, j, maps, pictures,
                                workers)

        return remembered

    def _judged(self, file: str, field: str, how: str, judge: Callable[..., np.ndarray], dtype: np.dtype, none: object,
                i: np.ndarray, j: np.ndarray, maps: np.ndarray, pictures: Pictures, workers: int,
                shape: tuple[int, ...] = ()) -> np.ndarray:
        """`judge`'s answer (of `dtype`, `shape` a pair) on each pair laid over by its map, kept in
        `field` of `file` under keys salted by `how`: asked for the pairs without an entry,
        `KEPT_EVERY` at a time; `none` before it is known."""
        keys, a, b = self._keys(i, j, how)
        hit, kept = self.tables[file].find(keys, field)
        out = np.full((len(keys), *shape), none, dtype)
        out[hit] = kept.astype(dtype)
        for block in self._blocks(np.flatnonzero(~hit)):
            found = np.asarray(judge(np.asarray(i)[block], np.asarray(j)[block], maps[block], pictures, workers), dtype)
            out[block] = found
            self.tables[file].add(keys[block], a[block], b[block], **{field: found})
        return out

    def parts(self, find: PartFinder, model: str, dim: int, kind: str = PARTS, most: int = 1) -> PartFinder:
        """`find` (`dedup.parts.part_vectors`, or another finder of up to `most` vectors a
        picture, `kind` naming it: `dedup.windows.window_vectors`) for the pictures without an
        entry; entries for the rest. `model`: the identity of the model whose `dim`-number vectors
        they are. Returns the rows (sorted; a row once for each of its vectors, in the finder's
        order) and the vectors."""

        def remembered(pictures: Pictures, rows: Sequence[int], embed, size: int, framing: Framing,
                       workers: int = 2) -> tuple[np.ndarray, np.ndarray]:
            self.checked = True
            rows = np.asarray(rows, np.int64)
            a = self.rows[rows]
            slot_salts = [_salt(kind, slot, model, size, framing) for slot in range(most)]
            hit, old_rows, old_vectors = self._stored(a, model, dim, kind, most, size, framing)
            new_rows, new_vectors, low = [], [], _low(a)
            for block in self._blocks(np.flatnonzero(~hit)):
                found, vectors = find(pictures, rows[block], embed, size, framing, workers)
                vectors = vectors.reshape(-1, dim)
                by_row = np.argsort(rows[block], kind="stable")
                at = block[by_row[np.searchsorted(rows[block][by_row], found)]] if len(found) else np.zeros(0, np.int64)  # into `rows`
                slot = np.arange(len(at)) - np.searchsorted(at, at)  # a row's vectors come together, in order
                if not self.read_only:
                    looked, kept = self._parts_tables(dim)
                    looked.add(_mix(a[block] ^ _salt(kind, model, size, framing)), low[block], low[block],
                               found=np.bincount(at, minlength=len(rows))[block])
                    for s in range(most):
                        mine = slot == s
                        kept.add(_mix(a[at[mine]] ^ slot_salts[s]), low[at[mine]], low[at[mine]], vector=vectors[mine])
                new_rows.append(at)
                new_vectors.append(vectors)
            kept_rows = [old for old in [*old_rows, *new_rows] if len(old)]
            positions = np.concatenate(kept_rows) if kept_rows else np.zeros(0, np.int64)
            all_vectors = (np.concatenate([*old_vectors, *new_vectors]) if len(positions)
                           else np.zeros((0, dim), np.float32))
            order = np.argsort(positions, kind="stable")
            return rows[positions[order]], all_vectors[order]

        return remembered

    def descriptors(self, find: Describer, side: int, count: int, keep: int) -> Describer:
        """`find` (`dedup.votes`' descriptors of some rows: at most `keep` of the `count` keypoints
        found at `side` pixels, None for a picture that cannot be had) for the rows without an
        entry; entries for the rest (a picture that had none gives an empty array)."""

        def remembered(rows: Sequence[int]) -> list[np.ndarray | None]:
            rows = np.asarray(rows, np.int64)
            a = self.rows[rows]
            salt = _salt(DESCRIPTORS, side, count, keep)
            hit, out = _read_pieces(self._table(*descriptors_table(keep)), a, salt, "descriptors")
            for block in self._blocks(np.flatnonzero(~hit)):
                found = find(rows[block])
                for k, d in zip(block.tolist(), found):
                    out[k] = d
                if not self.read_only:
                    self.checked = True
                    _add_pieces(self._table(*descriptors_table(keep)), a[block], salt, "descriptors", found)
            return out

        return remembered

    def described(self, side: int, count: int, keep: int) -> np.ndarray:
        """Which of the index's rows `descriptors` has all the descriptors of."""
        table = self._table(*descriptors_table(keep))
        return _read_pieces(table, self.rows, _salt(DESCRIPTORS, side, count, keep), "descriptors", read=False)[0]

    def assigner(self, side: int, count: int, keep: int) -> Assigner:
        """`dedup.votes.nearest_lists` of the descriptors that `descriptors` keeps (at `side`,
        `count`, `keep`) for the pictures without an entry at that many lists; entries for the
        rest. A picture's descriptors and the shipped lists do not change, so neither do its
        lists, and a vote after pictures were added finds them only for the new ones."""

        def remembered(owners: np.ndarray, desc: np.ndarray, lists: int) -> np.ndarray:
            rows, starts, counts = np.unique(owners, return_index=True, return_counts=True)  # a row's descriptors are together
            a = self.rows[rows]
            salt = _salt(LISTS, side, count, keep, lists)
            hit, kept = _read_pieces(self._table(*lists_table(keep, lists)), a, salt, "lists")
            out = np.zeros((len(owners), PROBE), np.int64)
            for k in np.flatnonzero(hit).tolist():
                if len(kept[k]) == counts[k]:
                    out[starts[k]:starts[k] + counts[k]] = kept[k]
                else:
                    hit[k] = False  # other descriptors than those listed: listed again
            for block in self._blocks(np.flatnonzero(~hit)):
                at = [np.arange(starts[k], starts[k] + counts[k]) for k in block.tolist()]
                found = nearest_lists(desc[np.concatenate(at)], lists)
                out[np.concatenate(at)] = found
                if not self.read_only:
                    self.checked = True
                    cuts = np.cumsum([len(x) for x in at])[:-1]
                    _add_pieces(self._table(*lists_table(keep, lists)), a[block], salt, "lists", np.split(found.astype(np.uint16), cuts))
            return out

        return remembered

    def stored_parts(self, model: str, dim: int, size: int, framing: Framing, kind: str = PARTS,
                     most: int = 1) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """What `parts` of the same finder keeps for all the index's rows, without looking at any
        picture, a slot and `STORED_BLOCK` rows at a time (so that memory holds that many
        vectors): the rows with a vector in the slot (sorted) and those vectors. Nothing is written."""
        a = self.rows
        _, kept = self._parts_tables(dim)
        _, whole = self._complete(a, model, dim, kind, most, size, framing)
        for slot in range(most):
            salt = _salt(kind, slot, model, size, framing)
            for start in range(0, len(whole[slot]), STORED_BLOCK):
                rows = whole[slot][start : start + STORED_BLOCK]
                stored, known = kept.find(_mix(a[rows] ^ salt))
                yield rows[stored], np.asarray(known["vector"], np.float32).reshape(-1, dim)

    def unlooked_parts(self, model: str, dim: int, size: int, framing: Framing, kind: str = PARTS, most: int = 1) -> np.ndarray:
        """The index's rows that `parts` of the same finder has not looked at (or whose vectors
        were lost since), sorted: those `stored_parts` has nothing of."""
        hit, _ = self._complete(self.rows, model, dim, kind, most, size, framing)
        return np.flatnonzero(~hit)

    def _complete(self, a: np.ndarray, model: str, dim: int, kind: str, most: int, size: int, framing: Framing
                  ) -> tuple[np.ndarray, list[np.ndarray]]:
        """For the pictures of row keys `a`: which were looked at with all their vectors kept (a
        picture with a vector lost since, a file damaged or deleted, is looked at again, all of it),
        and per slot the positions in `a` of those with a vector in the slot."""
        looked, kept = self._parts_tables(dim)
        hit, entries = looked.find(_mix(a ^ _salt(kind, model, size, framing)))
        counts = np.zeros(len(a), np.int64)
        counts[hit] = entries["found"]
        for slot in range(most):
            had = np.flatnonzero(hit & (counts > slot))
            hit[had[~kept.has(_mix(a[had] ^ _salt(kind, slot, model, size, framing)))]] = False
        return hit, [np.flatnonzero(hit & (counts > slot)) for slot in range(most)]

    def _parts_tables(self, dim: int) -> tuple[Table, Table]:
        """The table of the pictures looked at, and that of their `dim`-number vectors."""
        name, dtype = parts_table(dim)
        return self.tables[f"{PARTS}.npy"], self._table(name, dtype)

    def _stored(self, a: np.ndarray, model: str, dim: int, kind: str, most: int, size: int, framing: Framing
                ) -> tuple[np.ndarray, list[np.ndarray], list[np.ndarray]]:
        """For the pictures of row keys `a`: which were looked at with all their vectors kept
        (`_complete`), and per slot the positions in `a` that have a vector there and those vectors."""
        _, kept = self._parts_tables(dim)
        hit, slots = self._complete(a, model, dim, kind, most, size, framing)
        vectors = [np.asarray(kept.find(_mix(a[rows] ^ _salt(kind, slot, model, size, framing)))[1]["vector"],
                              np.float32).reshape(-1, dim) for slot, rows in enumerate(slots)]
        return hit, slots, vectors

    def voted(self, *settings: object) -> Pairs | None:
        """The pairs `keep_voted` kept with `settings` for the index's rows as they are now (the
        same pictures in the same order, the same code); None otherwise."""
        try:
            with np.load(self.at / VOTES) as kept:
                if str(kept["digest"]) != self._rows_digest(settings):
                    return None
                return Pairs(kept["i"].astype(np.int64), kept["j"].astype(np.int64), kept["d"].astype(np.float32))
        except (OSError, ValueError, KeyError, zipfile.BadZipFile):
            return None

    def keep_voted(self, pairs: Pairs, *settings: object) -> None:
        """Keep `pairs` (voted for, with `settings`) for later runs on the same pictures, at `save`."""
        self.checked = True
        self._voted = self._rows_digest(settings), pairs

    def _rows_digest(self, settings: tuple) -> str:
        h = hashlib.sha256(_code() + repr(settings).encode())
        h.update(np.ascontiguousarray(self.rows).tobytes())
        if self.reference is not None:
            h.update(b"reference" + np.ascontiguousarray(self.reference_rows).tobytes())
        return h.hexdigest()

    def _blocks(self, todo: np.ndarray) -> Iterator[np.ndarray]:
        """`todo`, `KEPT_EVERY` at a time, with a `checkpoint` after each block (whose entries the
        caller adds to the tables, as they are after it, before asking for the next)."""
        for start in range(0, len(todo), KEPT_EVERY):
            yield todo[start:start + KEPT_EVERY]
            self.checkpoint()

    def checkpoint(self) -> None:
        """After a block of a pass, or between two passes: save what the run made, when the memo
        was last saved more than `CHECKPOINT_AFTER` seconds ago (and long enough ago that saves take
        at most `CHECKPOINT_SHARE` of the time), and go on from the files saved, so that a run killed
        later (SIGKILL, a power cut) leaves what it did until then for the next run. Each table is
        saved whole, and its entries are whole by themselves, so the tables agree at any block."""
        since = _now() - self._saved_at
        if since < max(CHECKPOINT_AFTER, self._save_cost / CHECKPOINT_SHARE) or not self.checked or self.read_only:
            return
        start = _now()
        if self.save(quiet=True):
            for name in ("tables", "stamped"):  # the files as saved, and the stamp written with them
                self.__dict__.pop(name, None)
        self._saved_at = _now()
        self._save_cost = self._saved_at - start

    @contextmanager
    def saving(self) -> Iterator[PairChecks]:
        """A run's use of the memo: what it made is saved when the block ends, also when it ends by
        an interruption or an error (an entry depends only on its pictures and the settings, so
        the entries made before are good), and a later run does only the rest."""
        try:
            yield self
        finally:
            self.save()

    def save(self, quiet: bool = False) -> bool:
        """Write each table as `_Table.save` says, holding the index lock (the claim file records
        the folder); when the folder cannot be written or another command holds the lock, the
        memo stays as it was (False), with a warning unless `quiet` (a checkpoint's: the run's
        last save warns if it fails too)."""
        if not self.checked or self.read_only:
            return True  # no pair was checked (no pair check, or no pairs): nothing to learn from this run
        present_a, present_b = np.unique(_low(self.rows)), np.unique(_low(self.reference_rows))
        try:
            with index_lock(self.folder):
                ensure_claim(self.folder).own(FOLDER)
                folder = self.at
                for name, table in self.tables.items():  # a picture's own entries (`parts`, descriptors) are the index's
                    table.save(present_a, present_a if name.startswith(OWN) else present_b)
                for kind in (DESCRIPTORS, LISTS):
                    _drop_others(folder, kind, [name for name in self.tables if name.startswith(kind)])
                if self._voted is not None:
                    folder.mkdir(parents=True, exist_ok=True)
                    digest, pairs = self._voted
                    atomic_write(folder / VOTES, lambda tmp: _save_npz(tmp, digest=np.array(digest), i=pairs.i, j=pairs.j,
                                                                       d=pairs.d), durable=False)
                if folder.is_dir() and not self.stamped:
                    atomic_write(folder / STAMP, lambda tmp: tmp.write_text(_code().hex() + "\n"), durable=False)
        except (OSError, DedupError) as exc:
            (log.debug if quiet else log.warning)("the pair checks of this run were not kept (%s)", exc)
            return False
        return True


def _now() -> float:
    return time.monotonic()


def _drop_others(folder: Path, kind: str, kept: list[str]) -> None:
    """Delete the files of `kind` (`DESCRIPTORS`, `LISTS`) in `folder` other than `kept` (kept at
    another count a picture or of lists, for a catalog of another size), once a run has kept some."""
    if kept:
        for path in folder.glob(f"{kind}-*.npy"):
            if path.name not in kept:
                path.unlink(missing_ok=True)


def _piece_keys(a: np.ndarray, salt: np.uint64, number: np.ndarray | int) -> np.ndarray:
    """The keys of pieces `number` of the pictures of row keys `a` in a table of pieces salted by `salt`."""
    return _mix(_mix(a ^ salt) ^ np.asarray(number, np.uint64))


def _read_pieces(table: Table, a: np.ndarray, salt: np.uint64, field: str, read: bool = True
                 ) -> tuple[np.ndarray, list[np.ndarray | None]]:
    """For the pictures of row keys `a`: which have all their pieces in `table` (`_add_pieces`),
    and (`read`) their items of `field`, whole (None for the others)."""
    first = _piece_keys(a, salt, 0)
    hit, kept = table.find(first, None if read else "count")  # the first pieces looked up once, read whole when read
    counts = kept["count"] if read else kept
    at = np.flatnonzero(hit)
    found = [[d] for d in kept[field]] if read else []
    pieces = np.maximum(1, -(-counts.astype(np.int64) // table.dtype[field].shape[0]))
    for number in range(1, int(pieces.max(initial=1))):
        more = np.flatnonzero(pieces > number)
        keys = _piece_keys(a[at[more]], salt, number)
        had, rest = table.find(keys, field) if read else (table.has(keys), [])
        hit[at[more[~had]]] = False  # a piece lost: the picture is done again
        for k, d in zip(more[had].tolist(), rest):
            found[k].append(d)
    out: list[np.ndarray | None] = [None] * len(a)
    for k, n, parts in zip(at.tolist(), counts.tolist(), found):
        if hit[k]:
            out[k] = np.concatenate(parts)[:n]
    return hit, out


def _add_pieces(table: Table, a: np.ndarray, salt: np.uint64, field: str, items: Sequence[np.ndarray | None]) -> None:
    """Add to `table` each picture's items of `field` (`items[k]` of the picture of row key
    `a[k]`; None: none), in pieces of as many as an entry holds, each with the picture's count."""
    shape = table.dtype[field].shape
    counts = np.array([0 if d is None else len(d) for d in items], np.int64)
    pieces = np.maximum(1, -(-counts // shape[0]))
    starts = np.cumsum(pieces) - pieces
    whole = np.zeros((int(pieces.sum()), *shape), table.dtype[field].base)
    flat = whole.reshape(-1, *shape[1:])
    for d, at in zip(items, (starts * shape[0]).tolist()):
        if d is not None and len(d):
            flat[at:at + len(d)] = d
    owner = np.repeat(a, pieces)
    low = _low(owner)
    table.add(_piece_keys(owner, salt, np.arange(len(owner)) - np.repeat(starts, pieces)), low, low,
              count=np.repeat(counts, pieces), **{field: whole})


def _save_npz(path: Path, **arrays: np.ndarray) -> None:
    with open(path, "wb") as f:
        np.savez(f, **arrays)


def _low(row_keys: np.ndarray) -> np.ndarray:
    return (row_keys & np.uint64(0xFFFFFFFF)).astype(np.uint32)
