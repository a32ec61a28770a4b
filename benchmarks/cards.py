"""Playing cards: find-duplicates on whole decks, where every card of a deck is a look-alike of the others.

    python -m benchmarks.cards [--model default] [--copies 0.5] [--seed 0] [--out benchmarks/out/cards]

`gnome-cards-data` (aisleriot's card decks, installed with apt with `librsvg2-bin` when missing)
is held out: the default encoder, its threshold and its pair check were never trained, tuned or
calibrated on it, and nothing may be. Each deck's 52 cards are rendered 256 px high as PNG with
transparency, and a seeded `--copies` share of them get one edited copy (`dedup.augment.duplicate`,
as in the held-out copy-detection catalog). A card and its copy are duplicates; two cards are
different items, also the same card in two decks (another design: other printings, a bitmap
version, four-colour suits), unless the two renders are byte-identical (one picture: a duplicate).
`dedup index` and `find-duplicates` run as a user runs them, at the defaults and with
`--no-verify`; pHash is scored at its best Hamming threshold on the same catalog (an upper bound
for it). The wrong pairs reported are split by kind: two cards of one deck, one card in two decks,
other; "precision within designs" leaves out the second kind, which a user might call
duplicates. Headline figures go to `--json`.
"""
from __future__ import annotations

import argparse
import gzip
import shutil
import subprocess
from pathlib import Path

import numpy as np

from benchmarks.neardup import modes_of, prf, scored_catalog, write_modes
from dedup.augment import duplicate
from dedup.data import open_rgba
from recipes import apt

DECKS = Path("/usr/share/aisleriot/cards")
APT_PACKAGES = ("gnome-cards-data", "librsvg2-bin")
SUITS = ("club", "diamond", "heart", "spade")
RANKS = ("1", "2", "3", "4", "5", "6", "7", "8", "9", "10", "jack", "queen", "king")
HEIGHT = 256


def ensure() -> None:
    """Install the decks and the SVG renderer with apt when missing (needs root)."""
    if not (DECKS.is_dir() and any(DECKS.glob("*.svgz")) and shutil.which("rsvg-convert")):
        apt.install(APT_PACKAGES, "the card benchmark")


def render(deck: Path, card: str, work: Path) -> bytes | None:
    """One card of a deck as PNG bytes, `HEIGHT` px high; None when the deck has no such card."""
    svg = work / f"{deck.name.removesuffix('.svgz')}.svg"
    if not svg.exists():
        svg.write_bytes(gzip.decompress(deck.read_bytes()))
    done = subprocess.run(["rsvg-convert", "-i", card, "-h", str(HEIGHT), str(svg)], capture_output=True)
    return done.stdout if done.returncode == 0 and done.stdout else None


def build(out: Path, copies: float, seed: int) -> dict[str, tuple[int, str]]:
    """Write the catalog into `out/catalog`; return {path: (card id, family)} (`score_model`'s truth),
    card ids `deck * 100 + card` (a render byte-identical to an earlier one takes its id)."""
    rng = np.random.default_rng(seed)
    work = out / "svg"
    work.mkdir(parents=True, exist_ok=True)
    truth: dict[str, tuple[int, str]] = {}
    seen: dict[bytes, int] = {}
    for d, deck in enumerate(sorted(DECKS.glob("*.svgz"))):
        name = deck.name.removesuffix(".svgz")
        for c, card in enumerate(f"{suit}_{rank}" for suit in SUITS for rank in RANKS):
            png = render(deck, card, work)
            if png is None:
                continue
            rel = f"{name}/{card}.png"
            (out / "catalog" / rel).parent.mkdir(parents=True, exist_ok=True)
            (out / "catalog" / rel).write_bytes(png)
            card_id = seen.setdefault(png, d * 100 + c)
            truth[rel] = (card_id, "original")
            if rng.random() < copies:
                edited, family = duplicate(open_rgba(png, 512), rng)
                ext = ("jpg", "png", "webp")[int(rng.integers(0, 3))]
                edited.save(out / "catalog" / f"{name}/{card}_copy.{ext}", **({"quality": 85} if ext != "png" else {}))
                truth[f"{name}/{card}_copy.{ext}"] = (card_id, family)
    shutil.rmtree(work)
    return truth


def wrong_pairs(pred: set, true: set, truth: dict, paths: list[str]) -> dict[str, int]:
    """The reported pairs that join different cards, by kind."""
    card = [truth[p][0] for p in paths]
    out = {"two cards of one deck": 0, "one card in two decks": 0, "other": 0}
    for a, b in pred - true:
        if card[a] // 100 == card[b] // 100:
            out["two cards of one deck"] += 1
        elif card[a] % 100 == card[b] % 100:
            out["one card in two decks"] += 1
        else:
            out["other"] += 1
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="default", help="Encoder to benchmark (a shipped name or a file).")
    ap.add_argument("--copies", type=float, default=0.5, help="Share of the cards that get an edited copy.")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=Path("benchmarks/out/cards"))
    ap.add_argument("--json", type=Path, default=Path("benchmarks/results/cards.json"))
    args = ap.parse_args()
    ensure()
    truth, run, hashes = scored_catalog(args.model, args.out.resolve(), lambda out: build(out, args.copies, args.seed))
    paths, true = run["paths"], run["true"]
    decks = len({truth[p][0] // 100 for p in paths})
    print(f"{len(paths)} images: {decks} decks, {sum(f == 'original' for _, f in truth.values())} cards, "
          f"{len(true)} true pairs (a card and its edited copy, or two byte-identical renders)")
    print("| mode | reported pairs | precision | recall | F1 | wrong: two cards of one deck | one card in two decks | other "
          "| precision within designs |")
    print("|---|---|---|---|---|---|---|---|---|")
    rows = {}
    for mode, pred in modes_of(run, hashes):
        p, r, f = prf(pred, true)
        wrong = wrong_pairs(pred, true, truth, paths)
        right = len(pred & true)
        within = right / max(1, right + wrong["two cards of one deck"] + wrong["other"])
        rows[mode] = {"pairs": len(pred), "precision": round(p, 4), "recall": round(r, 4), "f1": round(f, 4), "wrong": wrong,
                      "precision_within_designs": round(within, 4)}
        print(f"| {mode} | {len(pred)} | {p:.4f} | {r:.4f} | {f:.4f} | " + " | ".join(str(v) for v in wrong.values())
              + f" | {within:.4f} |")
    print("recall by edit family (with the check): " + ", ".join(f"{k} {v:.2f}" for k, v in run["families"].items()))
    print(f"find-duplicates {run['find_s']:.1f} s, index {run['index_s']:.1f} s")
    command = "python -m benchmarks.cards" + (f" --copies {args.copies}" if args.copies != 0.5 else "") + (
        f" --seed {args.seed}" if args.seed else "")
    write_modes(args.json, "cards", command, args.model, rows, run, "recall_by_family",
                package="gnome-cards-data", decks=decks, images=len(paths), true_pairs=len(true))


if __name__ == "__main__":
    main()
