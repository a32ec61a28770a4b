"""Model commands: train, evaluate."""
from __future__ import annotations

import json
from pathlib import Path

import click

from dedup.cli.base import MODEL_OPT, QUIET_OPT, cli
from dedup.config import LOSSES


@cli.command("train")
@click.argument("data", type=click.Path(path_type=Path))
@click.option("--out", required=True, type=click.Path(path_type=Path), help="Model file to write (.pt).")
@click.option("--labels", type=click.Choice(["none", "folders"]), default="none", show_default=True,
    help=("none: positives are two augmentations of one image; folders: one sub-folder per class."))
@click.option("--loss", type=click.Choice(LOSSES), default="contrastive", show_default=True)
@click.option("--margin", type=float, default=None, help="Margin of the contrastive (default 1.0) or triplet (0.5) loss.")
@click.option("--optimizer", type=click.Choice(["adam", "sgd"]), default="adam", show_default=True, help="Adam, or SGD with momentum 0.9.")
@click.option("--lr", type=float, default=1e-3, show_default=True)
@click.option("--epochs", type=int, default=10, show_default=True)
@click.option("--batch-size", type=int, default=64, show_default=True, help="Items per batch (two views each).")
@click.option("--steps-per-epoch", type=int, default=None, help="Default: one pass over the training items.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--val-fraction", type=float, default=0.1, show_default=True, help="Items (or classes) held out for validation.")
@click.option("--image-size", type=int, default=64, show_default=True)
@click.option("--channels", default="32,64,128", show_default=True,
    help=("Widths of the 3x3 convolution blocks, 2x2 max-pooling between them (32,64,128 = the seed "
          "CNN, the shape of the default encoder)."))
@click.option("--augment", type=float, default=1.0, show_default=True, help="Strength of the random edits applied to views (0 = none).")
@click.option("--workers", type=int, default=0, show_default=True, help="Background processes preparing batches.")
@click.option("--trim/--no-trim", default=True, show_default=True,
    help=("Cut uniform borders (margins, letterboxing) before resizing, here and wherever the model "
          "is used."))
@click.option("--backdrop/--no-backdrop", default=True, show_default=True,
    help=("Repaint a plain backdrop around an object white, here and wherever the model is used."))
@click.option("--hard-negatives", type=float, default=0.0, show_default=True,
    help=("Share of each batch drawn as groups of look-alike items, re-mined every 5 epochs (0 = "
          "random batches)."))
@click.option("--resume", is_flag=True, help="Continue from OUT's checkpoint after an interruption.")
@QUIET_OPT
def train_cmd(data, out, labels, loss, margin, optimizer, lr, epochs, batch_size, steps_per_epoch, seed, val_fraction,
              image_size, channels, augment, workers, trim, backdrop, hard_negatives, resume, quiet):
    """Train a Siamese encoder on DATA (a plain folder, or class sub-folders with --labels folders)."""
    from dedup.config import ModelConfig, TrainConfig
    from dedup.progress import rich_training
    from dedup.train import train_folder

    cfg = TrainConfig(loss=loss, margin=margin, optimizer=optimizer, lr=lr, epochs=epochs, batch_size=batch_size,
                      steps_per_epoch=steps_per_epoch, seed=seed, workers=workers,
                      augment_strength=augment, hard_negatives=hard_negatives)
    spec = ModelConfig(channels=parse_channels(channels), image_size=image_size, trim=trim, backdrop=backdrop)
    with rich_training(not quiet, epochs) as (on_step, on_epoch):
        done = train_folder(data, out, labels=labels, spec=spec, cfg=cfg, val_fraction=val_fraction, resume=resume,
                            on_step=on_step, on_epoch=on_epoch)
    click.echo(f"Wrote {out} ({done.images} training images, {len(done.skipped)} skipped)"
               + (f"; loss curves in {done.curves}" if done.curves else ""))
    val = done.validation
    if val:
        click.echo(f"Validation: AUC {val['auc']:.4f}, best F1 {val['f1']:.4f} at threshold {val['threshold']:.4f}")


def parse_channels(text: str) -> tuple[int, ...]:
    """`--channels 24,64,128,256` → (24, 64, 128, 256)."""
    try:
        return tuple(int(c) for c in text.split(","))
    except ValueError:
        raise click.BadParameter(f"{text!r}: give comma-separated widths, e.g. 32,64,128", param_hint="--channels") from None


@cli.command("evaluate")
@click.argument("data", type=click.Path(path_type=Path))
@MODEL_OPT
@click.option("--pairs", "pairs_csv", type=click.Path(path_type=Path), help="CSV path_a,path_b,same instead of sampling from DATA's class folders.")
@click.option("--num-pairs", type=int, default=2000, show_default=True, help="Balanced pairs sampled from class folders.")
@click.option("--threshold", "-t", type=float, default=None, help="Decision threshold (default: the model's calibrated one).")
@click.option("--target-precision", type=float, default=None, help="Also report the largest threshold reaching this precision.")
@click.option("--one-shot", "ways", type=int, default=None, help="Also run N-way one-shot trials (Koch et al.).")
@click.option("--trials", type=int, default=400, show_default=True, help="One-shot trials.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--plots", type=click.Path(path_type=Path), default=None, help="Write PREFIX.roc.png and PREFIX.hist.png.")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
def evaluate_cmd(data, model_path, pairs_csv, num_pairs, threshold, target_precision, ways, trials, seed, plots, fmt):
    """Measure an encoder on labelled DATA (class sub-folders) or a pairs CSV: the seed's table."""
    from dedup.evaluate import evaluate

    result = evaluate(model_path, data, pairs_csv=pairs_csv, num_pairs=num_pairs, threshold=threshold,
                      target_precision=target_precision, ways=ways, trials=trials, seed=seed, plots=plots)
    threshold = result["threshold"]
    if fmt == "json":
        click.echo(json.dumps(result, indent=2))
        return
    c = result["confusion"]
    source = {"given": "given", "model": "the model's calibrated threshold", "fallback": "no calibrated threshold in the model: the fallback"}
    click.echo(f"pairs: {result['pairs']['positive']} same, {result['pairs']['negative']} different; "
               f"threshold {threshold:.4f} ({source[result['threshold_source']]})")
    click.echo(f"confusion matrix:   predicted different | predicted same\n"
               f"  actual different  {c['tn']:>10} | {c['fp']:>10}\n  actual same       {c['fn']:>10} | {c['tp']:>10}")
    for key in ("accuracy", "precision", "recall", "f1", "auc", "far", "frr", "eer_threshold", "best_f1_threshold"):
        click.echo(f"  {key:<18} {result[key]:.4f}")
    if result.get("target_precision_threshold") is not None:
        click.echo(f"  threshold for precision ≥ {target_precision}: {result['target_precision_threshold']:.4f}")
    if ways:
        o = result["one_shot"]
        click.echo(f"  {o['ways']}-way one-shot accuracy: {o['accuracy']:.4f} over {o['trials']} trials (chance {o['chance']:.3f})")
    for line in result["skipped_files"]:
        click.echo(f"  skipped {line}", err=True)
