"""Print the shipped encoder's model card (markdown) from the metadata inside its file.

    python benchmarks/model_card.py [MODEL]
"""
from __future__ import annotations

import sys

from dedup.model import load_model


def main() -> None:
    model = load_model(sys.argv[1] if len(sys.argv) > 1 else None)
    m, c = model.meta, model.config
    r = m.get("recipe", {})
    cal = m.get("calibration", {})
    hist = m.get("history", [])
    data = m.get("data", {})
    pooling = "global average pooling" if c.pooling == "avg" else "global average + 2×2 grid average pooling"
    framing = "".join([", uniform borders trimmed first (`ModelConfig.trim`)" if c.trim else "",
                       ", a plain backdrop repainted white (`ModelConfig.backdrop`)" if c.backdrop else ""])
    hard = (f"; hard negatives: {r['hard_negatives']:.0%} of every batch from look-alike groups re-mined every "
            f"{r.get('mine_every')} epochs ({r.get('mine_k')} neighbours each, `dedup.mining`)") if r.get("hard_negatives") else ""
    lines = [
        f"- **Identity**: `{model.identity}`; architecture: conv channels {list(c.channels)} (3×3, ReLU, 2×2 max-pool "
        f"between), {pooling}, dense {c.embedding_dim}, L2-normalised; input {c.image_size}×{c.image_size} RGB{framing}.",
        f"- **Data**: {', '.join(data.get('sources', []))}; {data.get('train_images', '?')} training images, "
        f"{data.get('val_images', '?')} distinct validation images for calibration; split: {data.get('split', '?')}; "
        "blank drawings and pixel-identical look-alikes removed (`benchmarks/pool.py: distinct`).",
        f"- **Recipe**: self-supervised pairs (two random edits of one image, `dedup.augment.random_view`), "
        f"loss `{r.get('loss')}`, optimiser {r.get('optimizer')} (lr {r.get('lr')}, {r.get('schedule')} schedule), "
        f"{r.get('epochs')} epochs × {r.get('batch_size')} images (two views each), seed {r.get('seed')}{hard}.",
        f"- **Training time**: {m.get('training_minutes', '?')} minutes on {m.get('machine', '?')}; "
        f"final train loss {hist[-1]['train_loss']:.3f}, validation loss {hist[-1]['val_loss']:.3f}, "
        f"validation AUC (in-batch view pairs) {hist[-1]['val_auc']:.4f}." if hist else "- **Training time**: ?",
        f"- **Default threshold {model.threshold:.4f}**: the largest threshold with precision ≥ "
        f"{cal.get('target_precision', '?')} on a validation catalog of {cal.get('catalog_images', '?')} images "
        f"({cal.get('positive_pairs', '?')} duplicate pairs: distinct validation-pool pictures + "
        f"`dedup.augment.duplicate` copies); there: precision {cal.get('precision', 0):.4f}, recall "
        f"{cal.get('recall', 0):.4f}, F1 {cal.get('f1', 0):.4f}, pair ROC-AUC {cal.get('auc', 0):.4f} "
        f"(best F1 {cal.get('best_f1', 0):.4f} at {cal.get('best_f1_threshold', 0):.4f}).",
    ]
    v, vc = model.verify, m.get("verify_calibration", {})
    if v:
        alone = vc.get("encoder alone at its threshold", {})
        checked = vc.get("with the keypoint check (out of fold)", {})
        lines.append(
            f"- **Keypoint check** (`dedup.verify`, `benchmarks/calibrate_verifier.py`): candidates are every pair "
            f"under the threshold and each image's {v.get('neighbours', 20)} nearest under {v['candidates']}; one is kept when the logistic model over "
            f"({', '.join(v.get('features', []))}) gives ≥ {v['accept']} (the lowest cut with out-of-fold pair precision "
            f"≥ 0.90) and, beyond the threshold, at least {v.get('min_inliers', 0)} keypoints agree (within it but "
            f"beyond half of it, at least one when the sparser picture has {v.get('veto_keypoints', 0)} or more, "
            f"looked at again at twice the side when it has fewer); sets use "
            f"complete linkage. Fitted on {vc.get('candidates', '?')} candidate pairs of {vc.get('images', '?')} images in "
            f"validation catalogs (seeds {vc.get('catalog_seeds', '?')}, {vc.get('true_pairs', '?')} true pairs); there, "
            f"out of fold: precision {checked.get('precision', 0):.4f}, recall {checked.get('recall', 0):.4f}, F1 "
            f"{checked.get('f1', 0):.4f}, against {alone.get('precision', 0):.4f} / {alone.get('recall', 0):.4f} / "
            f"{alone.get('f1', 0):.4f} for the encoder alone at its threshold.")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
