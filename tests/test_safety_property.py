"""The safety invariant over random histories: index, act (move, symlink, hardlink, delete, dry
run or applied), undo, and edits behind dedup's back (files changed, removed, swapped for links
or FIFOs, folders swapped for links to outside). The folder outside holds the catalog's own bytes
at the same names, so only confinement, not the hash re-check, keeps it safe.

After every step: every distinct file content that was present at the start (and that the user
did not remove themselves) is still present under the catalog or the `to` folder, except a
content that an applied delete removed while its keeper stayed; and nothing outside those roots
changed.
"""
from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import hypothesis.strategies as st
import pytest
from hypothesis import HealthCheck, settings
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from dedup.actions import apply, plan_for_index
from dedup.duplicates import find_duplicates
from dedup.errors import DedupError
from dedup.images import content_hash
from dedup.indexer import index_catalog
from dedup.synth import jpeg_bytes, scene
from dedup.undo import undo


def model():
    """A fresh fake encoder for each example (what the actions do does not depend on the weights)."""
    from fakes import fake_model

    return fake_model()


def contents(*roots: Path) -> set[str]:
    """Hashes of every regular file under `roots` (links not followed)."""
    found = set()
    for root in roots:
        for dirpath, dirs, files in os.walk(root):
            for name in files:
                p = os.path.join(dirpath, name)
                if os.path.isfile(p) and not os.path.islink(p):
                    found.add(content_hash(open(p, "rb").read()))
    return found


def snapshot(root: Path) -> dict[str, tuple]:
    out = {}
    for dirpath, dirs, files in os.walk(root):
        for name in dirs + files:
            p = os.path.join(dirpath, name)
            st_ = os.lstat(p)
            data = open(p, "rb").read() if os.path.isfile(p) and not os.path.islink(p) else None
            out[p] = (st_.st_mode, st_.st_ino, data)
    return out


FILES = ["a/1.jpg", "b/1.jpg", "c/1.jpg", "a/2.jpg", "b/2.jpg", "a/3.jpg", "c/near3.jpg", "solo.jpg"]


class History(RuleBasedStateMachine):
    @initialize()
    def setup(self):
        self.base = Path(tempfile.mkdtemp(prefix="dedup-prop-"))
        self.cat, self.to, self.outside, self.idx = (self.base / n for n in ("cat", "to", "outside", "idx"))
        pictures = {1: jpeg_bytes(scene(11, (96, 72))), 2: jpeg_bytes(scene(12, (96, 72))),
                    3: jpeg_bytes(scene(13, (96, 72)), quality=90)}
        near3 = jpeg_bytes(scene(13, (96, 72)), quality=60)  # other bytes, the same picture
        for rel in FILES:
            data = near3 if "near" in rel else jpeg_bytes(scene(14, (96, 72))) if rel == "solo.jpg" else pictures[int(rel[-5])]
            (self.cat / rel).parent.mkdir(parents=True, exist_ok=True)
            (self.cat / rel).write_bytes(data)
        shutil.copytree(self.cat, self.outside)  # the same bytes at the same names: a followed link would match
        self.required = contents(self.cat)
        self.outside_before = snapshot(self.outside)
        self.manifests: list[Path] = []
        index_catalog(self.cat, self.idx, model())

    def teardown(self):
        shutil.rmtree(self.base, ignore_errors=True)

    def _own(self, rel: str) -> Path | None:
        """The catalog path `rel` if the user's edit would stay in the catalog (no linked folder)."""
        path = self.cat / rel
        return path if os.path.realpath(path.parent) == os.path.abspath(path.parent) else None

    def _user_removed(self):
        self.required &= contents(self.cat, self.to)

    @rule(follow=st.booleans())
    def index(self, follow):
        try:
            index_catalog(self.cat, self.idx, model(), follow_symlinks=follow)
        except DedupError:  # e.g. nothing left to index
            pass

    @rule(action=st.sampled_from(["move", "symlink", "hardlink", "delete"]), threshold=st.sampled_from([0.01, 0.4]),
          keep=st.sampled_from(["largest", "first", "shortest-path"]), do_apply=st.sampled_from([True, True, False]))
    def act(self, action, threshold, keep, do_apply):
        report = find_duplicates(self.idx, threshold, keep=keep, verify=False)
        p = plan_for_index(self.idx, report, action, self.to)
        if not do_apply:
            from dedup.actions import preview

            preview(p)
            return
        outcomes, manifest = apply(p, self.idx)
        self.manifests.append(manifest)
        present = contents(self.cat, self.to)
        for c in self.required - present:
            kept = [o.step for o in outcomes if o.status == "done" and o.step.action == "delete" and o.step.content_hash == c]
            assert kept, f"content {c} lost by {action}"
            assert any(
                (self.cat / s.keeper).is_file() and not (self.cat / s.keeper).is_symlink()
                and content_hash((self.cat / s.keeper).read_bytes()) == s.keeper_hash
                for s in kept
            ), f"content {c} deleted without its keeper"
            self.required.discard(c)

    @rule(which=st.integers(0, 10))
    def undo_one(self, which):
        if self.manifests:
            undo(self.manifests[which % len(self.manifests)])

    @rule(rel=st.sampled_from(FILES), seed=st.integers(0, 5))
    def change_file(self, rel, seed):
        path = self._own(rel)
        if path and path.is_file() and not path.is_symlink():
            path.write_bytes(jpeg_bytes(scene(100 + seed, (96, 72))))
            self._user_removed()

    @rule(rel=st.sampled_from(FILES))
    def remove_file(self, rel):
        path = self._own(rel)
        if path and (path.is_symlink() or path.is_file()):
            path.unlink()
            self._user_removed()

    @rule(rel=st.sampled_from(FILES), kind=st.sampled_from(["link_outside", "fifo", "link_inside", "dev_zero"]))
    def swap_file(self, rel, kind):
        path = self._own(rel)
        if not path or not (path.is_symlink() or path.is_file()):
            return
        path.unlink()
        self._user_removed()
        if kind == "fifo":
            os.mkfifo(path)
        elif kind == "dev_zero":
            os.symlink("/dev/zero", path)
        else:
            os.symlink(self.outside / rel if kind == "link_outside" else self.cat / FILES[0], path)

    @rule(folder=st.sampled_from(["a", "b", "c"]))
    def swap_folder(self, folder):
        path = self.cat / folder
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
            self._user_removed()
            os.symlink(self.outside / folder, path)

    @invariant()
    def nothing_lost_nothing_outside_touched(self):
        if not hasattr(self, "cat"):
            return
        assert self.required <= contents(self.cat, self.to), "a content was lost"
        assert snapshot(self.outside) == self.outside_before, "something outside the roots changed"


History.TestCase.settings = settings(max_examples=100, stateful_step_count=8, deadline=None,
                                     suppress_health_check=[HealthCheck.too_slow])
test_history = pytest.mark.slow(History.TestCase)
