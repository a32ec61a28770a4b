"""The progress protocol (`on_progress(stage, done, total)`) and its rich adapter on stderr."""
from __future__ import annotations

from contextlib import contextmanager
from typing import Callable, Iterator, Protocol


class OnProgress(Protocol):
    def __call__(self, stage: str, done: int, total: int) -> None: ...


ProgressFn = Callable[[str, int, int], None]


def silent(stage: str, done: int, total: int) -> None:
    """A progress callback that shows nothing."""


@contextmanager
def rich_progress(enabled: bool = True) -> Iterator[ProgressFn]:
    """Yield a callback that draws one rich bar per stage on stderr (items/s and ETA)."""
    if not enabled:
        yield silent
        return
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TaskProgressColumn,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    class Rate(TextColumn):
        def __init__(self) -> None:
            super().__init__("")

        def render(self, task):  # type: ignore[override]
            speed = task.finished_speed or task.speed
            from rich.text import Text

            return Text(f"{speed:,.0f}/s" if speed else "", style="progress.data.speed")

    console = Console(stderr=True)
    columns = (
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TaskProgressColumn(),
        Rate(),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
    )
    tasks: dict[str, int] = {}
    with Progress(*columns, console=console, transient=False) as bar:

        def update(stage: str, done: int, total: int) -> None:
            if stage not in tasks:
                tasks[stage] = bar.add_task(stage, total=total)
            bar.update(tasks[stage], completed=done, total=total)

        yield update


@contextmanager
def rich_training(enabled: bool = True, epochs: int = 1) -> Iterator[tuple[Callable, Callable]]:
    """Yield (on_step, on_epoch) callbacks drawing the run's bar (epochs, time left) and the
    epoch's bar (steps, running loss), and a line per epoch with its losses and validation AUC."""
    if not enabled:
        yield (lambda *a: None), (lambda *a: None)
        return
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    console = Console(stderr=True)
    state: dict = {"task": None, "epoch": 1, "sum": 0.0}
    shown: list[Progress] = []  # started on the first step, so an early error stays one line

    def bars() -> Progress:
        if not shown:
            bar = Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                           TextColumn("{task.fields[info]}"), TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(),
                           console=console)
            bar.start()
            state["run"] = bar.add_task("training", total=epochs, info="")
            shown.append(bar)
        return shown[0]

    def on_step(step: int, steps: int, loss: float) -> None:
        bar = bars()
        if state["task"] is None:
            state["task"] = bar.add_task(f"epoch {state['epoch']}/{epochs}", total=steps, info="loss -")
            state["sum"] = 0.0
        state["sum"] += loss
        bar.update(state["task"], completed=step, info=f"loss {state['sum'] / step:.4f}")

    def on_epoch(report) -> None:
        bar = bars()
        val = f", val loss {report.val_loss:.4f}, val AUC {report.val_auc:.4f}" if report.val_loss is not None else ""
        bar.console.print(f"epoch {report.epoch}: train loss {report.train_loss:.4f}{val} ({report.seconds:.1f}s)")
        if state["task"] is not None:
            bar.remove_task(state["task"])
        auc = f"val AUC {report.val_auc:.4f}" if report.val_auc is not None else ""
        bar.update(state["run"], completed=report.epoch, info=auc)
        state["task"], state["epoch"] = None, report.epoch + 1

    try:
        yield on_step, on_epoch
    finally:
        for bar in shown:
            bar.stop()
