"""The README is a short front door whose figures are generated, and its links lead somewhere."""
from __future__ import annotations

import re
from pathlib import Path

from recipes import model_card

ROOT = Path(__file__).resolve().parent.parent


def test_the_readme_is_short_and_its_local_links_exist():
    text = (ROOT / "README.md").read_text()
    assert len(text.splitlines()) <= 200
    for target in re.findall(r"\]\(([^)#]+)(?:#[^)]*)?\)", text):
        if "://" not in target:
            assert (ROOT / target).exists(), target


def test_the_model_card_and_the_readme_figures_are_what_the_generator_writes():
    fig = model_card.figures()
    from dedup.loading import load_model

    assert (ROOT / "docs" / "model-card.md").read_text() == model_card.card(load_model(), fig)
    readme = (ROOT / "README.md").read_text()
    assert model_card.readme_with(readme, model_card.summary(fig)) == readme
    assert f"{fig['with_check']['f1']:.3f}" in readme.replace("**", "")
