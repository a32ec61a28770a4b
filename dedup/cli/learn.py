"""Model commands: train, calibrate, evaluate."""
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
    help=("none: positives are two edits of one image; folders: one sub-folder per class."))
@click.option("--loss", type=click.Choice(LOSSES), default="contrastive", show_default=True)
@click.option("--margin", type=float, default=None,
    help="Margin of the contrastive loss (default 1.0; 0.5 with --labels folders) or the triplet loss (0.5).")
@click.option("--optimizer", type=click.Choice(["adam", "sgd"]), default="adam", show_default=True, help="Adam, or SGD with momentum 0.9.")
@click.option("--lr", type=float, default=None, help="Learning rate (default 0.001).")
@click.option("--epochs", type=int, default=None, help="Default: 30 with --labels folders, else 10.")
@click.option("--batch-size", type=int, default=None, help="Items per batch, two views each (default 64).")
@click.option("--steps-per-epoch", type=int, default=None, help="Default: one pass over the training items.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--val-fraction", type=float, default=0.1, show_default=True,
    help="Held out for validation: images of each class (few classes), whole classes (10 or more), or items.")
@click.option("--image-size", type=int, default=None,
    help="Encoder input side. Default: 64, or with --labels folders the pictures' median size (32 to 64).")
@click.option("--channels", default="32,64,128", show_default=True,
    help=("Widths of the 3x3 convolution blocks, 2x2 max-pooling between them (32,64,128 = the seed "
          "CNN, the shape of the default encoder)."))
@click.option("--pooling", type=click.Choice(["avg", "avg+grid2"]), default=None,
    help="avg: global average (the seed CNN); avg+grid2: also a 2x2 grid of averages. Default: avg+grid2 with --labels folders.")
@click.option("--augment", type=float, default=None,
    help="Strength of the random edits applied to views (0 = none; default 1). Labelled data gets edits that keep the label.")
@click.option("--workers", type=int, default=0, show_default=True, help="Background processes preparing batches.")
@click.option("--trim/--no-trim", default=None,
    help="Cut uniform borders before resizing, here and wherever the model is used. Default: on, off with --labels folders.")
@click.option("--backdrop/--no-backdrop", default=None,
    help="Repaint a plain backdrop around an object white, here and wherever the model is used. Default as --trim.")
@click.option("--hard-negatives", type=float, default=None,
    help=("Share of each batch drawn as groups of look-alike items, re-mined every 5 epochs (default 0: "
          "random batches)."))
@click.option("--check/--no-check", default=True, show_default=True,
    help="Calibrate the pair check on the validation pictures (kept when it beats the encoder alone).")
@click.option("--resume", is_flag=True, help="Continue from OUT's checkpoint after an interruption.")
@QUIET_OPT
def train_cmd(data, out, labels, loss, margin, optimizer, lr, epochs, batch_size, steps_per_epoch, seed, val_fraction,
              image_size, channels, pooling, augment, workers, trim, backdrop, hard_negatives, check, resume, quiet):
    """Train a Siamese encoder on DATA (a plain folder, or class sub-folders with --labels folders).

    Exits 1 with a warning when validation shows that the model did not learn.
    """
    from dedup.fit import recipe, train_folder
    from dedup.progress import rich_training

    cfg = recipe(labels, loss=loss, margin=margin, optimizer=optimizer, lr=lr, epochs=epochs, batch_size=batch_size,
                 steps_per_epoch=steps_per_epoch, seed=seed, workers=workers, augment_strength=augment,
                 hard_negatives=hard_negatives)
    with rich_training(not quiet, cfg.epochs) as (on_step, on_epoch):
        done = train_folder(data, out, labels=labels, image_size=image_size, channels=parse_channels(channels),
                            pooling=pooling, trim=trim, backdrop=backdrop, cfg=cfg, val_fraction=val_fraction,
                            resume=resume, on_step=on_step, on_epoch=on_epoch, check=check)
    spec = done.model.config
    click.echo(f"Wrote {out} ({done.images} training images, {done.val_images} held out ({done.split}), "
               f"{len(done.skipped)} skipped; input {spec.image_size} px)" + (f"; loss curves in {done.curves}" if done.curves else ""))
    val = done.validation
    if val:
        rule = done.model.meta["validation"]["threshold_rule"]
        click.echo(f"Validation: AUC {val['auc']:.4f}, accuracy {val['accuracy']:.4f}, F1 {val['f1']:.4f} at threshold "
                   f"{val['threshold']:.4f} (stored; chosen for {rule})")
    if not val:
        click.echo("Warning: no validation pairs, so nothing measured whether the model learned; the threshold is "
                   "the fallback 0.5 (hold out a validation fraction to calibrate it)", err=True)
    if done.calibration is not None:
        kept = "calibrated and kept" if done.calibration.check else "not kept"
        click.echo(f"Pair check: {kept} ({done.calibration.reason})")
    for problem in done.problems:
        click.echo(f"Warning: {problem}", err=True)
    if done.problems:
        raise SystemExit(1)


def parse_channels(text: str) -> tuple[int, ...]:
    """`--channels 24,64,128,256` → (24, 64, 128, 256)."""
    try:
        return tuple(int(c) for c in text.split(","))
    except ValueError:
        raise click.BadParameter(f"{text!r}: give comma-separated widths, e.g. 32,64,128", param_hint="--channels") from None


@cli.command("calibrate")
@click.argument("model_path", metavar="MODEL", type=click.Path(path_type=Path))
@click.argument("data", type=click.Path(path_type=Path))
@click.option("--out", type=click.Path(path_type=Path), default=None, help="Model file to write (default: MODEL itself).")
@click.option("--workers", default=2, show_default=True, help="Threads reading files for keypoints.")
def calibrate_cmd(model_path, data, out, workers):
    """Calibrate MODEL's pair check on DATA (class sub-folders: pictures in one are the same item).

    The check is kept when, on held-out folds, it does better than the encoder alone; weights and
    identity do not change, so indexes built with MODEL stay valid (re-index to record the check).
    """
    from dedup.calibrate import calibrate
    from dedup.errors import UsageError
    from dedup.loading import load_model
    from dedup.model import save_model
    from dedup.modelfile import model_file

    target = out or model_file(model_path)
    if out is None and not Path(model_path).is_file():
        raise UsageError(f"{model_path!r} is a shipped model; write the calibrated copy elsewhere", option="out")
    model = load_model(model_path)
    found = calibrate(model, data, workers=workers)
    save_model(model, target)
    kept = "calibrated and kept" if found.check else "not kept"
    click.echo(f"Pair check of {target}: {kept} ({found.reason}; {found.pairs} candidate pairs of "
               f"{found.images} pictures)")


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
    for path in result.get("plots", []):
        click.echo(f"  plot: {path}")
    for line in result["skipped_files"]:
        click.echo(f"  skipped {line}", err=True)
