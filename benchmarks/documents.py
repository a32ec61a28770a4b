"""Pages of text: copies of a document among many that look alike (invoices, reports, forms).

    python -m benchmarks.documents [--pages 200] [--seed 0] [--out benchmarks/out/documents]

A catalog where every picture looks like the others: generated pages of four templates (a coloured
header, a table, form fields, a letter), each filled with its own seeded text. A page may get one
or two copies, edited as documents are: `resized` (scaled to 45–90% and saved as a JPEG of quality
35–85), `greyscale`, `skewed` (turned by up to 2.5°, as a scan is), `margins` (a few percent cut
off or added on each side) and `scanned` (a paper tint, blur and noise, then JPEG). A page may also
have a *variant*: the same page with one figure changed, which is another document: the total in
its grey box (`boxed`) or a reference number printed on the bare paper (`paper`). A page and its copies are duplicates; a page and its variant are not (their
wrong pairs are counted apart). The pages are drawn with Pillow's own font, so the catalog needs
nothing installed. `dedup index` and `find-duplicates` run as a user runs them, at the defaults,
with `--no-verify` and with `--nothing-differs`; pHash is scored at its best Hamming threshold on
the same catalog (an upper bound for it). Headline figures go to `--json`.
"""
from __future__ import annotations

import argparse
import io
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from benchmarks.neardup import modes_of, prf, scored_catalog, write_modes
from dedup.augment import _font

WORDS = ("total amount due invoice date customer order shipping tax net gross quantity price item account balance "
         "payment reference period summary department project budget review approved signature address phone "
         "description unit rate hours service delivery terms conditions notes remarks").split()
TEMPLATES = ("invoice", "report", "form", "letter")
SIZE = (620, 820)
VARIANT_PREFIX = "v"  # a variant page's file name starts with this and ends with its kind
VARIANTS = {"b": "boxed", "p": "paper"}  # the figure a variant changes: the boxed total, or a number on the bare paper
EDITS = ("resized", "greyscale", "skewed", "margins", "scanned")


def _line(rng: np.random.Generator, low: int = 4, high: int = 9) -> str:
    return " ".join(rng.choice(WORDS, int(rng.integers(low, high))))


def page(template: str, seed: int, value: int, reference: int) -> Image.Image:
    """One page of `template`, its text drawn from `seed`; `value` (the boxed total) and `reference`
    (a number on the bare paper) are the figures a variant changes."""
    rng = np.random.default_rng(seed)
    im = Image.new("RGB", SIZE, "white")
    draw = ImageDraw.Draw(im)
    font, small = _font(int(rng.integers(15, 20))), _font(13)
    head = tuple(int(c) for c in rng.integers(20, 140, 3))
    w, h = SIZE
    y = 40
    if template in ("invoice", "report"):
        draw.rectangle([0, 0, w, 70], fill=head)
        draw.text((20, 22), f"{template.title()} {int(rng.integers(1000, 9999))}", fill="white", font=font)
        y = 95
    if template == "invoice":
        draw.rectangle([30, y, w - 30, y + 200], outline="black", width=2)
        for r in range(6):
            draw.line([30, y + 32 * (r + 1), w - 30, y + 32 * (r + 1)], fill="black")
            draw.text((40, y + 8 + 32 * r), _line(rng, 3, 5), fill="black", font=small)
            draw.text((w - 140, y + 8 + 32 * r), f"{int(rng.integers(1, 999))}.{int(rng.integers(0, 99)):02d}", fill="black", font=small)
        y += 220
    if template == "form":
        draw.text((30, y), _line(rng, 2, 4).upper(), fill="black", font=font)
        y += 40
        for r in range(9):
            draw.text((30, y), _line(rng, 1, 3) + ":", fill="black", font=small)
            draw.rectangle([220, y - 4, w - 30, y + 20], outline=(90, 90, 90))
            draw.text((228, y), _line(rng, 1, 4), fill=(20, 20, 120), font=small)
            y += 38
    if template == "letter":
        draw.text((w - 220, y), f"{int(rng.integers(1, 28))} {rng.choice(['March', 'June', 'October'])} 2026", fill="black", font=small)
        y += 60
    while y < h - 130:
        draw.text((30, y), _line(rng), fill="black", font=font)
        y += int(font.size * 1.4)
    draw.rectangle([w - 240, h - 100, w - 30, h - 50], fill=(235, 235, 235), outline="black")
    draw.text((w - 228, h - 88), f"Total {value}.00", fill="black", font=font)
    draw.text((30, h - 88), f"Reference {reference}", fill="black", font=font)
    return im


def _jpeg(im: Image.Image, quality: int) -> Image.Image:
    out = io.BytesIO()
    im.save(out, "JPEG", quality=quality)
    return Image.open(io.BytesIO(out.getvalue())).convert("RGB")


def edited(im: Image.Image, edit: str, rng: np.random.Generator) -> Image.Image:
    """A copy of a page under one of `EDITS`."""
    if edit == "resized":
        s = rng.uniform(0.45, 0.9)
        return _jpeg(im.resize((round(im.width * s), round(im.height * s)), Image.Resampling.BILINEAR), int(rng.integers(35, 86)))
    if edit == "greyscale":
        return im.convert("L").convert("RGB")
    if edit == "skewed":
        return im.rotate(rng.uniform(-2.5, 2.5), Image.Resampling.BICUBIC, expand=True, fillcolor="white")
    if edit == "margins":
        w, h = im.size
        if rng.random() < 0.5:
            cut = [round(v) for v in rng.uniform(0, 0.05, 4) * (w, h, w, h)]
            return im.crop((cut[0], cut[1], w - cut[2], h - cut[3]))
        pad = [round(v) for v in rng.uniform(0.02, 0.08, 4) * (w, h, w, h)]
        out = Image.new("RGB", (w + pad[0] + pad[2], h + pad[1] + pad[3]), "white")
        out.paste(im, (pad[0], pad[1]))
        return out
    tint = np.array([rng.uniform(0.9, 1.0), rng.uniform(0.88, 0.98), rng.uniform(0.8, 0.95)])  # scanned
    arr = np.asarray(im.filter(ImageFilter.GaussianBlur(rng.uniform(0.4, 1.0))), np.float32) * tint
    arr += rng.normal(0, rng.uniform(3, 9), arr.shape)
    return _jpeg(Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8)), int(rng.integers(50, 86)))


def build(out: Path, pages: int, seed: int) -> dict[str, tuple[int, str]]:
    """Write the catalog into `out/catalog`; return {path: (document id, family)} (`score_model`'s truth)."""
    rng = np.random.default_rng(seed)
    catalog = out / "catalog"
    catalog.mkdir(parents=True)
    truth: dict[str, tuple[int, str]] = {}
    for k in range(pages):
        template, text_seed = TEMPLATES[k % len(TEMPLATES)], int(rng.integers(1 << 31))
        value, reference = int(rng.integers(100, 99999)), int(rng.integers(10000, 99999))
        original = page(template, text_seed, value, reference)
        original.save(catalog / f"d{k:04d}.png")
        truth[f"d{k:04d}.png"] = (2 * k, "original")
        for c in range(int(rng.choice([0, 1, 1, 2]))):
            edit = str(rng.choice(EDITS))
            name = f"d{k:04d}_{c}_{edit}.jpg"
            edited(original, edit, rng).save(catalog / name, quality=92)
            truth[name] = (2 * k, edit)
        if rng.random() < 0.4:  # the same page with another figure: another document
            kind = str(rng.choice(list(VARIANTS)))
            other = int(rng.integers(1, 900))
            variant = page(template, text_seed, value + other * (kind == "b"), reference + other * (kind == "p"))
            variant.save(catalog / f"{VARIANT_PREFIX}{k:04d}{kind}.png")
            truth[f"{VARIANT_PREFIX}{k:04d}{kind}.png"] = (2 * k + 1, "original")
    return truth


def variant_wrong(pred: set, paths: list[str]) -> dict[str, int]:
    """Reported pairs that join a page (or a copy of it) with its variant, by the variant's kind."""
    doc = [p.removeprefix(VARIANT_PREFIX).removeprefix("d")[:4] for p in paths]
    kind = [VARIANTS[p.split(".")[0][-1]] if p.startswith(VARIANT_PREFIX) else None for p in paths]
    out = dict.fromkeys(VARIANTS.values(), 0)
    for a, b in pred:
        if doc[a] == doc[b] and (kind[a] is None) != (kind[b] is None):
            out[kind[a] or kind[b]] += 1
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="default", help="Encoder to benchmark (a shipped name or a file).")
    ap.add_argument("--pages", type=int, default=200)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=Path("benchmarks/out/documents"))
    ap.add_argument("--json", type=Path, default=Path("benchmarks/results/documents.json"))
    args = ap.parse_args()
    truth, run, hashes = scored_catalog(args.model, args.out.resolve(), lambda out: build(out, args.pages, args.seed))
    paths, true = run["paths"], run["true"]
    variants = {kind: sum(p.startswith(VARIANT_PREFIX) and p.split(".")[0].endswith(k) for p in paths)
                for k, kind in VARIANTS.items()}
    print(f"{len(paths)} images: {args.pages} pages, variants with one figure changed: {variants['boxed']} boxed, "
          f"{variants['paper']} on the paper; {len(true)} true pairs")
    print("| mode | reported pairs | precision | recall | F1 | pairs joining a page with its variant: boxed | paper "
          "| precision without them |")
    print("|---|---|---|---|---|---|---|---|")
    rows = {}
    for mode, pred in modes_of(run, hashes):
        p, r, f = prf(pred, true)
        wrong = variant_wrong(pred, paths)
        others = len(pred & true) / max(1, len(pred) - sum(wrong.values()))
        rows[mode] = {"pairs": len(pred), "precision": round(p, 4), "recall": round(r, 4), "f1": round(f, 4), "variant_pairs": wrong,
                      "precision_without_variants": round(others, 4)}
        print(f"| {mode} | {len(pred)} | {p:.4f} | {r:.4f} | {f:.4f} | {wrong['boxed']} | {wrong['paper']} | {others:.4f} |")
    print("recall by edit (with the check): " + ", ".join(f"{k} {v:.2f}" for k, v in run["families"].items()))
    print(f"find-duplicates {run['find_s']:.1f} s, index {run['index_s']:.1f} s")
    command = "python -m benchmarks.documents" + (f" --pages {args.pages}" if args.pages != 200 else "") + (
        f" --seed {args.seed}" if args.seed else "")
    write_modes(args.json, "documents", command, args.model, rows, run, "recall_by_edit",
                pages=args.pages, variants=variants, images=len(paths), true_pairs=len(true))


if __name__ == "__main__":
    main()
