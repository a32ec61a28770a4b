"""A picture stored many times over: find-duplicates where some pictures come at a dozen sizes.

    python -m benchmarks.sizes [--part test] [--originals 300] [--stored 30] [--seed 1] [--out benchmarks/out/sizes] [--json PATH]

A shop stores a product photo at every size its pages show, a photo library holds a burst, a
training set repeats an image: one picture with many copies. The catalog is the held-out
copy-detection catalog's kind (`recipes.pool.build_catalog` from pool `--part`: originals with
0–3 edited copies), and `--stored` of its originals are also saved at twelve sizes (longer side
64 to 600 px, Lanczos, JPEG quality 75–95), so each has a dozen near-identical copies more than
the benchmark catalogs' pictures ever have. `dedup index` and `find-duplicates` run as a user runs
them, at the defaults and with `--no-verify`; pHash is scored at its best Hamming threshold on the
same catalog (an upper bound for it). Recall is reported by kind of pair: between two sizes of one
picture, and the catalog's other true pairs. Headline figures go to `--json` when given.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from PIL import Image

from benchmarks.neardup import modes_of, prf, scored_catalog, write_modes
from recipes.pool import build_catalog

SIZES = (64, 96, 128, 160, 200, 240, 300, 360, 420, 480, 512, 600)  # longer side of each stored size, px


def build(out: Path, part: str, originals: int, stored: int, seed: int) -> dict[str, tuple[int, str]]:
    """The catalog with `stored` of its originals also saved at every one of `SIZES`; the truth
    (`score_model`'s), the sizes labelled `size`."""
    truth = build_catalog(out, originals, seed, part=part)
    firsts = sorted(p for p, (_, kind) in truth.items() if kind == "original")
    rng = np.random.default_rng([seed, 3])
    for name in sorted(rng.choice(firsts, size=min(stored, len(firsts)), replace=False).tolist()):
        with Image.open(out / "catalog" / name) as im:
            rgb = im.convert("RGB")
        for k, side in enumerate(SIZES):
            scale = side / max(rgb.size)
            size = (max(1, round(rgb.width * scale)), max(1, round(rgb.height * scale)))
            rel = f"{Path(name).stem}_s{k:02d}.jpg"
            rgb.resize(size, Image.Resampling.LANCZOS).save(out / "catalog" / rel, quality=int(rng.integers(75, 96)))
            truth[rel] = (truth[name][0], "size")
    return truth


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="default", help="Encoder to benchmark (a shipped name or a file).")
    ap.add_argument("--part", choices=("test", "val"), default="test", help="Pool part the catalog is drawn from.")
    ap.add_argument("--originals", type=int, default=300)
    ap.add_argument("--stored", type=int, default=30, help="Originals also stored at a dozen sizes.")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--out", type=Path, default=Path("benchmarks/out/sizes"))
    ap.add_argument("--json", type=Path, default=None, help="Write the headline figures here.")
    args = ap.parse_args()
    truth, run, hashes = scored_catalog(args.model, args.out.resolve(),
                                        lambda out: build(out, args.part, args.originals, args.stored, args.seed))
    paths, true = run["paths"], run["true"]
    sized = {k for k, p in enumerate(paths) if truth[p][1] == "size"}
    item = [truth[p][0] for p in paths]
    of_sizes = {(a, b) for a, b in true if a in sized or b in sized}
    print(f"{len(paths)} images from the {args.part} pool: {args.stored} pictures at {len(SIZES)} sizes more, "
          f"{len(true)} true pairs ({len(of_sizes)} with a stored size)")
    print("| mode | reported pairs | precision | recall | F1 | recall: pairs with a stored size | other true pairs |")
    print("|---|---|---|---|---|---|---|")
    rows = {}
    for mode, pred in modes_of(run, hashes):
        p, r, f = prf(pred, true)
        by_size = len(pred & of_sizes) / max(1, len(of_sizes))
        rest = len((pred & true) - of_sizes) / max(1, len(true - of_sizes))
        rows[mode] = {"pairs": len(pred), "precision": round(p, 4), "recall": round(r, 4), "f1": round(f, 4),
                      "recall_sizes": round(by_size, 4), "recall_other": round(rest, 4)}
        print(f"| {mode} | {len(pred)} | {p:.4f} | {r:.4f} | {f:.4f} | {by_size:.4f} | {rest:.4f} |")
    wrong = [(paths[a], paths[b]) for a, b in run["pred"] - true if item[a] != item[b] and (a in sized or b in sized)]
    print(f"wrong pairs with a stored size (with the check): {len(wrong)}")
    print(f"find-duplicates {run['find_s']:.1f} s, index {run['index_s']:.1f} s")
    if args.json:
        write_modes(args.json, "sizes", "python -m benchmarks.sizes", args.model, rows, run, "recall_by_family",
                    part=args.part, images=len(paths), true_pairs=len(true))


if __name__ == "__main__":
    main()
