"""The review page in a real browser (Debian's chromium, headless, through playwright), and
`dedup apply` of what it exports."""
from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner
from fakes import page_data
from PIL import Image

from dedup.cli import cli
from dedup.indexer import index_catalog

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


def tree(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()}


@pytest.fixture()
def reviewed(planted, encoder, tmp_path):
    root, _ = planted
    cat, idx, out = tmp_path / "cat", tmp_path / "idx", tmp_path / "review"
    shutil.copytree(root, cat)
    index_catalog(cat, idx, encoder)
    result = CliRunner().invoke(cli, ["review", "--index", str(idx), "--out", str(out), "-q"])
    assert result.exit_code == 0, result.output
    return cat, idx, out


def sets_of(idx: Path) -> list[set[str]]:
    result = CliRunner().invoke(cli, ["find-duplicates", "--index", str(idx), "--format", "json", "-q"])
    return [{m["path"] for m in g["members"]} for g in json.loads(result.stdout)["groups"]]


@pytest.fixture()
def browser():
    sync_api = pytest.importorskip("playwright.sync_api")
    if not os.path.exists(CHROMIUM):
        pytest.skip("no chromium (make test installs Debian's)")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield b
        b.close()


def test_the_page_in_a_browser_and_apply_of_its_export(reviewed, browser, tmp_path, encoder):
    cat, idx, out = reviewed
    page = browser.new_page(viewport={"width": 1400, "height": 900}, accept_downloads=True)
    requests, errors = [], []
    page.on("request", lambda r: requests.append(r.url))
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto((out / "index.html").as_uri())
    expected = sets_of(idx)
    assert page.locator("[data-set]").count() == len(expected) > 2
    page.wait_for_load_state("load")
    loaded = page.evaluate("""() => [...document.images].filter(i => {
        const r = i.getBoundingClientRect(); return r.bottom > 0 && r.top < innerHeight; })
        .map(i => i.complete && i.naturalWidth > 0)""")
    assert loaded and all(loaded)

    one, two = page.locator('[data-set="1"]'), page.locator('[data-set="2"]')
    new_keeper = one.locator("[data-path]").nth(1).get_attribute("data-path")
    one.locator('[data-action="keep"]').first.click()
    rejected = page.locator('[data-set="2"] [data-path]').nth(1).get_attribute("data-path")
    two.locator('[data-action="reject"]').first.click()
    page.reload()
    assert "keeper" in page.locator(f'[data-set="1"] [data-path="{new_keeper}"]').get_attribute("class")
    assert "not-dup" in page.locator(f'[data-set="2"] [data-path="{rejected}"]').get_attribute("class")

    page.keyboard.press("j")
    assert "current" in page.locator('[data-set="2"]').get_attribute("class")
    page.select_option('[data-filter="kind"]', "exact")
    exact = sum(1 for s in json.loads(page.locator("#data").text_content())["sets"] if s["exact"])
    assert page.locator("[data-set]").count() == exact
    page.select_option('[data-filter="kind"]', "all")

    with page.expect_download() as download:
        page.click('[data-action="export"]')
    decisions = tmp_path / "decisions.json"
    download.value.save_as(decisions)
    assert not errors, errors
    assert all(u.startswith(("file://", "data:", "blob:")) for u in requests), [u for u in requests if not u.startswith("file")]

    doc = json.loads(decisions.read_text())
    assert doc["format"] == "dedup-decisions" and doc["version"] == 1 and doc["catalog"] == str(cat.resolve())
    assert doc["sets"][0]["keep"] == new_keeper and rejected in doc["sets"][1]["not_duplicates"]
    assert len(doc["sets"]) == len(expected)

    before = tree(cat)
    dry = CliRunner().invoke(cli, ["apply", str(decisions), "--index", str(idx), "--action", "move", "--to", str(tmp_path / "moved")])
    assert dry.exit_code == 0 and "Dry run" in dry.output and tree(cat) == before
    done = CliRunner().invoke(cli, ["apply", str(decisions), "--index", str(idx), "--action", "move",
                                    "--to", str(tmp_path / "moved"), "--apply"])
    assert done.exit_code == 0, done.output
    removed = {p for s in doc["sets"] for p in s["remove"]}
    assert tree(tmp_path / "moved") == removed and tree(cat) == before - removed
    assert new_keeper in tree(cat) and rejected in tree(cat)

    index_catalog(cat, idx, encoder)  # the moved files leave the index; the judgement stays
    assert not any({rejected, doc["sets"][1]["keep"]} <= s for s in sets_of(idx))


def test_rejected_pairs_stay_rejected_until_forgotten(reviewed, tmp_path):
    cat, idx, _ = reviewed
    first = sorted(sets_of(idx), key=len)[-1]
    keep, *others = sorted(first)
    doc = {"format": "dedup-decisions", "version": 1, "catalog": str(cat.resolve()), "index": str(idx),
           "sets": [{"keep": keep, "remove": [], "not_duplicates": others}]}
    decisions = tmp_path / "d.json"
    decisions.write_text(json.dumps(doc))
    result = CliRunner().invoke(cli, ["apply", str(decisions), "--index", str(idx), "--action", "delete", "--apply", "--yes"])
    assert result.exit_code == 0 and "pairs recorded" in result.output
    assert all(not (set(first) <= s) for s in sets_of(idx))
    assert tree(cat) >= set(first)
    forgot = CliRunner().invoke(cli, ["find-duplicates", "--index", str(idx), "--forget-judgements", "-q", "--format", "json"])
    assert forgot.exit_code == 0 and "Forgot" in forgot.output
    assert any(set(first) <= s for s in sets_of(idx))


@pytest.mark.parametrize("fault", ["other_catalog", "unknown_path", "twice", "garbage", "wrong_format"])
def test_decisions_that_do_not_match_the_index_change_nothing(reviewed, tmp_path, fault):
    cat, idx, _ = reviewed
    group = sorted(sets_of(idx), key=len)[-1]
    keep, *others = sorted(group)
    doc = {"format": "dedup-decisions", "version": 1, "catalog": str(cat.resolve()), "index": str(idx),
           "sets": [{"keep": keep, "remove": others, "not_duplicates": []}]}
    if fault == "other_catalog":
        doc["catalog"] = str(tmp_path)
    elif fault == "unknown_path":
        doc["sets"][0]["remove"].append("nope/missing.jpg")
    elif fault == "twice":
        doc["sets"].append({"keep": others[0], "remove": [keep], "not_duplicates": []})
    elif fault == "wrong_format":
        doc["format"] = "something-else"
    decisions = tmp_path / "d.json"
    decisions.write_text("{oops" if fault == "garbage" else json.dumps(doc))
    before = tree(cat)
    result = CliRunner().invoke(cli, ["apply", str(decisions), "--index", str(idx), "--action", "delete", "--apply", "--yes"])
    assert result.exit_code != 0 and "Traceback" not in result.output
    assert len([line for line in result.output.splitlines() if line.startswith("Error")]) == 1
    assert tree(cat) == before


def test_with_the_catalog_moved_away_the_page_previews_from_the_index(reviewed, tmp_path):
    cat, idx, out = reviewed
    before = page_data(out)
    assert all(m["thumb"] and m["error"] is None and m["format"] for s in before["sets"] for m in s["members"])
    cat.rename(tmp_path / "elsewhere")
    moved = CliRunner().invoke(cli, ["review", "--index", str(idx), "--out", str(tmp_path / "again"), "-q"])
    assert moved.exit_code == 0, moved.output
    after = page_data(tmp_path / "again")
    assert [[m["path"] for m in s["members"]] for s in after["sets"]] == [[m["path"] for m in s["members"]] for s in before["sets"]]
    members = [m for s in after["sets"] for m in s["members"]]
    assert all(m["thumb"] and m["format"] is None and "stored in the index" in m["error"] for m in members)
    for m in members:
        with Image.open(tmp_path / "again" / m["thumb"]) as im:
            assert im.format == "JPEG" and max(im.size) <= 256


def _changed_box(a: Image.Image, b: Image.Image) -> tuple[float, float, float, float]:
    """The bounding box (x0, y0, x1, y1, in shares) of the pixels that differ between two pictures of one size."""
    import numpy as np

    changed = np.abs(np.asarray(a.convert("L"), np.int16) - np.asarray(b.convert("L"), np.int16)) > 40
    ys, xs = np.nonzero(changed)
    return xs.min() / changed.shape[1], ys.min() / changed.shape[0], (xs.max() + 1) / changed.shape[1], (ys.max() + 1) / changed.shape[0]


def test_the_page_outlines_where_each_member_differs_from_the_keeper(series_index, tmp_path, browser):
    _, idx, items = series_index
    out = tmp_path / "review"
    result = CliRunner().invoke(cli, ["review", "--index", str(idx), "--out", str(out), "--variants-together", "--keep", "first",
                                      "-q"])
    assert result.exit_code == 0, result.output

    [group] = page_data(out)["sets"]  # the items of one design, with --variants-together
    differs = {m["path"]: m["differs"] for m in group["members"]}
    assert group["keep"] == "item0.png" and differs["item0.png"] is None  # the first by path
    assert not group["nothing_differs"]
    assert differs["item0_copy.jpg"]["boxes"] == []  # the keeper's own copy differs nowhere
    for path in ("item1.png", "item2.png"):  # another item: its letter is the largest region outlined
        spots = differs[path]
        x0, y0, x1, y1 = _changed_box(items[0], items[int(path[4])])
        x, y, w, h = spots["boxes"][0]
        assert x <= x0 and y <= y0 and x + w >= x1 and y + h >= y1 and w * h < 0.05, (path, spots)
        assert 0 < spots["share"] < 0.05 and not spots["throughout"]

    page = browser.new_page(viewport={"width": 1400, "height": 900})
    errors = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto((out / "index.html").as_uri())
    boxes = sum(len(s["boxes"]) for s in differs.values() if s)
    assert page.locator(".spot").count() == boxes > 0
    assert page.locator(".spot").first.is_visible()
    assert page.locator("td", has_text="outlined").count() >= 2
    page.locator('[data-path="item1.png"] .thumb').click()  # compared large: the regions on both sides
    assert page.locator("#overlay .spot").count() == len(differs["item1.png"]["boxes"]) + len(differs["item1.png"]["other_boxes"])
    page.keyboard.press("Escape")
    page.keyboard.press("o")
    assert not page.locator(".spot").first.is_visible()
    page.select_option('[data-filter="kind"]', "nowhere")
    assert page.locator("[data-set]").count() == 0
    page.select_option('[data-filter="kind"]', "somewhere")
    assert page.locator("[data-set]").count() == 1
    page.locator('[data-set="1"] [data-path="item1.png"] [data-action="keep"]').click()  # another keeper
    pairs = {(p["a"], p["b"]): p["differs"] for p in group["pairs"]}  # between the members other than the keeper

    def against_item1(path: str) -> list:
        if path == "item0.png":  # the suggested keeper: its side of item1's comparison with it
            return differs["item1.png"]["other_boxes"]
        return pairs[("item1.png", path)]["other_boxes"] if ("item1.png", path) in pairs else pairs[(path, "item1.png")]["boxes"]

    for path in ("item0.png", "item2.png", "item0_copy.jpg"):
        assert page.locator(f'[data-set="1"] [data-path="{path}"] .spot').count() == len(against_item1(path))
    assert page.locator('[data-path="item2.png"] .spot').count() > 0  # its letter, against item1's
    assert page.locator('[data-path="item1.png"] .spot').count() == 0
    assert not errors, errors

    apart = CliRunner().invoke(cli, ["review", "--index", str(idx), "--out", str(tmp_path / "apart"), "-q"])
    assert apart.exit_code == 0, apart.output
    [kept] = page_data(tmp_path / "apart")["sets"]  # the items stay apart; the copy goes with its item
    assert {m["path"] for m in kept["members"]} == {"item0.png", "item0_copy.jpg"} and kept["nothing_differs"]


def test_pairs_between_members_are_known_in_small_sets_only():
    from dedup.differs import other_pairs
    from dedup.results import Group, Member

    def group(n: int, exact: bool = False) -> Group:
        return Group("m0", 0.1, exact, tuple(Member(f"m{k}", 0.1) for k in range(n)))

    found = other_pairs([group(2), group(4), group(4, exact=True), group(7)], most=6)
    assert found == [[], [("m1", "m2"), ("m1", "m3"), ("m2", "m3")], [], []]
