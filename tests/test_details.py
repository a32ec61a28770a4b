"""Telling look-alike items apart (`dedup.details`): another letter on a badge or another
colourway is told apart; a copy, a colour edit, a rotation with its fill and a caption are not;
where two pictures differ is outlined (`differing_spots`)."""
from __future__ import annotations

import io
import json

import numpy as np
import pytest
from click.testing import CliRunner
from fakes import checking_model, drawing, series_items
from PIL import Image, ImageDraw, ImageEnhance, ImageFilter

from dedup import augment
from dedup.cli import cli
from dedup.details import (
    MOVED_AREA,
    Differences,
    _drawn_only,
    _largest,
    _on_rim,
    align,
    differing_spots,
    exact_detail,
    framed_map,
    moved_part,
    near_edge,
    other_colourway,
    pair_told_apart,
    prepared,
    tiny_pixels_differ,
    tiny_told_apart,
    told_apart,
)
from dedup.duplicates import find_duplicates
from dedup.images import ImageSkip
from dedup.indexer import index_catalog
from dedup.keypoints import keypoints, pair_map, rescaled
from dedup.model import load_model
from dedup.pictures import grey_at, picture_bytes, rgb_of
from dedup.report import duplicates_summary


def _judge(a: Image.Image, b: Image.Image) -> bool:
    pa, pb = picture_bytes(a.convert("RGB")), picture_bytes(b.convert("RGB"))
    count, to_b = pair_map(keypoints(grey_at(pa, 256)), keypoints(grey_at(pb, 256)), 256)
    assert count >= 20  # the keypoints take them for one picture
    return pair_told_apart(prepared(pa), prepared(pb), to_b)


@pytest.mark.parametrize("kind", ["letter", "colour"])
def test_items_of_a_series_are_told_apart(kind):
    a, b, c = series_items(kind)
    assert _judge(a, b) and _judge(b, c)


def _shaded_parts(folder_hue: int) -> Image.Image:
    """An icon of two shaded parts, outlined: a folder of hue `folder_hue` (of 256) on an orange box."""
    hsv = np.zeros((256, 256, 3), np.uint8)
    hsv[..., 2] = 255  # white backdrop
    ys, xs = np.mgrid[0:256, 0:256] / 255.0
    for (top, bottom, left, right), hue in (((30, 110, 40, 140), folder_hue), ((120, 230, 40, 220), 20)):
        part = (slice(top, bottom), slice(left, right))
        hsv[part + (0,)] = hue
        hsv[part + (1,)] = (110 + 120 * ys[part]).astype(np.uint8)
        hsv[part + (2,)] = (250 - 110 * xs[part]).astype(np.uint8)
    out = Image.fromarray(hsv, "HSV").convert("RGB")
    draw = ImageDraw.Draw(out)
    for box in ((40, 30, 140, 110), (40, 120, 220, 230)):
        draw.rectangle(box, outline=(0, 0, 0), width=3)
    for k in range(5):
        draw.line((60 + 30 * k, 140, 75 + 30 * k, 210), fill=(40, 20, 0), width=3)
        draw.polygon([(55 + 18 * k, 45), (65 + 18 * k, 60), (52 + 18 * k, 70)], outline=(0, 0, 0), width=2)
    return out


def test_one_part_in_another_colour_is_another_colourway_but_a_sticker_or_colour_edit_is_not():
    blue, green = _shaded_parts(150), _shaded_parts(80)  # the same icon with its folder in another colour
    assert other_colourway(align(*_laid_over(blue, green))) and _judge(blue, green)
    paler = ImageEnhance.Color(ImageEnhance.Brightness(blue).enhance(1.15)).enhance(0.7)
    stickered = blue.copy()
    ImageDraw.Draw(stickered).ellipse((70, 45, 110, 85), fill=(230, 40, 40))  # flat, in a colour of its own
    for copy in (paler, stickered):  # a colour edit turns no hue; a sticker is no part shaded alike
        assert not other_colourway(align(*_laid_over(blue, copy)))


def _laid_over(a: Image.Image, b: Image.Image):
    pa, pb = picture_bytes(a.convert("RGB")), picture_bytes(b.convert("RGB"))
    count, to_b = pair_map(keypoints(grey_at(pa, 256)), keypoints(grey_at(pb, 256)), 256)
    assert count >= 20
    return prepared(pa), prepared(pb), rescaled(to_b, 256)


def _small_badge(im: Image.Image, glyph: str) -> Image.Image:
    out = augment.flatten(im).convert("RGB")
    draw = ImageDraw.Draw(out)
    draw.ellipse([118, 118, 142, 142], fill=(40, 90, 200), outline=(0, 0, 0))
    draw.text((130, 130), glyph, fill="white", font=augment._font(16), anchor="mm")
    return out


def test_two_renders_that_differ_in_one_small_spot_and_nowhere_else_are_told_apart():
    a, b = _small_badge(drawing(5), "A"), _small_badge(drawing(5), "K")  # a letter too small for `differing_detail`
    assert exact_detail(*_laid_over(a, b)) and _judge(a, b)
    jpeg = io.BytesIO()
    a.save(jpeg, "JPEG", quality=70)
    copy = Image.open(io.BytesIO(jpeg.getvalue())).convert("RGB")
    assert not exact_detail(*_laid_over(a, copy))  # a copy is re-encoded: it differs elsewhere too
    captioned = _caption(a)  # pixel for pixel the same elsewhere, but the caption lies on the backdrop
    assert not exact_detail(*_laid_over(a, captioned)) and not _judge(a, captioned)
    assert not exact_detail(*_laid_over(a, a.copy()))


def _tiny_icon(emblem: str | None, size: int = 16) -> Image.Image:
    """A folder icon drawn at `size` px, with a red cross or bar (`emblem`) in its lower right corner."""
    im = Image.new("RGB", (size, size), "white")
    d = ImageDraw.Draw(im)
    s = size / 16
    d.rectangle((1 * s, 3 * s, 14 * s, 13 * s), fill=(190, 160, 90), outline=(90, 70, 30))
    d.rectangle((1 * s, 2 * s, 6 * s, 4 * s), fill=(170, 140, 70))
    if emblem == "cross":
        d.line((9 * s, 9 * s, 15 * s, 15 * s), fill=(200, 20, 20), width=max(1, round(2 * s)))
        d.line((9 * s, 15 * s, 15 * s, 9 * s), fill=(200, 20, 20), width=max(1, round(2 * s)))
    elif emblem == "bar":
        d.rectangle((9 * s, 11 * s, 15 * s, 13 * s), fill=(200, 20, 20))
    return im


def _as_stored(im: Image.Image) -> np.ndarray:
    return rgb_of(picture_bytes(im))


def test_tiny_pictures_of_one_size_that_differ_in_an_emblem_are_told_apart_and_their_copies_are_not():
    same, mirror = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]), np.array([[-1.0, 0.0, 15 / 16], [0.0, 1.0, 0.0]])
    cross, bar, plain = (_as_stored(_tiny_icon(e)) for e in ("cross", "bar", None))
    assert tiny_pixels_differ(cross, bar, same) and tiny_pixels_differ(cross, plain, same)
    stored = [picture_bytes(_tiny_icon(e)) for e in ("cross", "bar", "cross")] + [picture_bytes(_tiny_icon("bar", 48))]
    maps = np.stack([same] * 3)
    told = tiny_told_apart([0, 0, 1], [1, 2, 3], maps, lambda row: stored[row])
    assert told.tolist() == [True, False, False]  # another emblem; the same icon; a picture that is not tiny
    icon = _tiny_icon("cross")
    jpeg = io.BytesIO()
    icon.save(jpeg, "JPEG", quality=60)
    copies = [Image.open(io.BytesIO(jpeg.getvalue())), icon.filter(ImageFilter.GaussianBlur(1.0)),
              icon.filter(ImageFilter.SHARPEN), ImageEnhance.Brightness(icon).enhance(1.15), icon.convert("P").convert("RGB"),
              ImageEnhance.Contrast(icon).enhance(0.7), icon.convert("L")]
    for copy in copies:
        assert not tiny_pixels_differ(cross, _as_stored(copy.convert("RGB")), same)
    flipped = _as_stored(icon.transpose(Image.Transpose.FLIP_LEFT_RIGHT))
    assert not tiny_pixels_differ(cross, flipped, mirror)  # a mirrored copy
    assert tiny_pixels_differ(cross, _as_stored(_tiny_icon("bar").transpose(Image.Transpose.FLIP_LEFT_RIGHT)), mirror)
    assert tiny_pixels_differ(cross, bar, np.array([[0.2, -0.5, 0.5], [-0.2, -0.4, 0.9]]))  # keypoints agreeing by chance
    on_blue = np.asarray(_tiny_icon("bar")).copy()
    on_blue[(on_blue == 255).all(axis=2)] = (30, 60, 160)
    assert not tiny_pixels_differ(cross, _as_stored(Image.fromarray(on_blue)), same)  # two backdrops: left to the other tests
    assert not tiny_pixels_differ(cross, bar, np.array([[0.8, 0.0, 0.1], [0.0, 0.8, 0.1]]))  # not pixel for pixel
    assert not tiny_pixels_differ(cross, bar, np.array([[1.0, 0.0, 3 / 16], [0.0, 1.0, 0.0]]))  # three pixels apart
    large = [_as_stored(_tiny_icon(e, 48)) for e in ("cross", "bar")]
    assert not tiny_pixels_differ(*large, same)  # not tiny: the detail tests judge them
    assert not tiny_pixels_differ(cross, _as_stored(_tiny_icon("bar", 24)), same)  # two sizes


def _fine_texture(seed: int) -> Image.Image:
    """A photo-like picture: fine texture everywhere, so that a mark laid on it has edges on both sides."""
    noise = np.random.default_rng(seed).integers(0, 256, (360, 480, 3)).astype(np.uint8)
    blurred = np.asarray(Image.fromarray(noise).filter(ImageFilter.GaussianBlur(1.0)), np.float32)
    return Image.fromarray(np.clip((blurred - 128) * 4 + 128, 0, 255).astype(np.uint8))


def test_an_exact_spot_on_the_rim_of_the_overlap_is_where_a_thumbnail_was_resampled():
    # a wallpaper's preview laid over the wallpaper differed in 13 pixels of its last column, and nowhere else
    overlap = np.zeros((160, 256), bool)
    overlap[:, :] = True
    rim, middle = np.zeros_like(overlap), np.zeros_like(overlap)
    rim[114:127, 255] = True
    middle[70:80, 120:130] = True
    assert _on_rim(rim, overlap) and not _on_rim(middle, overlap)
    overlap[:, 200:] = False  # the other picture covers less: its own edge is a rim too
    shifted = np.zeros_like(overlap)
    shifted[114:127, 198] = True
    assert _on_rim(shifted, overlap) and not _on_rim(middle, overlap)


def test_a_mark_in_a_corner_of_a_photo_is_no_detail():
    photo = _fine_texture(1)
    marked = photo.copy()
    ImageDraw.Draw(marked).text((350, 318), "© shop", fill="white", font=augment._font(28))
    assert not _judge(photo, marked.filter(ImageFilter.GaussianBlur(0.8)))  # blurred too: not an exact detail
    inside = np.zeros((200, 200), bool)
    inside[90:110, 90:110] = True
    corner = np.zeros((200, 200), bool)
    corner[180:195, 150:190] = True
    assert not near_edge(inside) and near_edge(corner)


def _caption(im: Image.Image) -> Image.Image:
    out = im.convert("RGB").copy()
    ImageDraw.Draw(out).text((20, 220), "SALE 20% off", fill=(200, 0, 0), font=augment._font(22))
    return out


@pytest.mark.parametrize("edit", [
    lambda im: im.convert("RGB").resize((180, 180)),
    lambda im: ImageEnhance.Color(ImageEnhance.Brightness(im.convert("RGB")).enhance(1.3)).enhance(0.5),
    lambda im: im.convert("RGB").rotate(12, expand=True, fillcolor="white"),
    lambda im: im.convert("L").convert("RGB"),
    lambda im: _caption(im),
], ids=["smaller", "brighter and paler", "rotated with white corners", "greyscale", "captioned"])
def test_a_copy_of_one_item_is_not_told_apart_from_it(edit):
    item = series_items("letter")[0]
    assert not _judge(item, edit(item))


def _sign(symbol: int) -> Image.Image:
    """A warning sign: the frame of `drawing(5)`, and in its middle one of two symbols drawn in
    the frame's own black."""
    im = augment.flatten(drawing(5)).convert("RGB")
    draw = ImageDraw.Draw(im)
    draw.rectangle((78, 78, 178, 178), fill=(255, 220, 0), outline=(0, 0, 0), width=4)
    if symbol == 0:
        draw.polygon([(128, 88), (100, 140), (124, 140), (110, 170), (158, 118), (132, 118), (150, 88)], fill=(0, 0, 0))
    else:
        draw.ellipse((96, 96, 160, 160), outline=(0, 0, 0), width=10)
        draw.line((100, 156, 156, 100), fill=(0, 0, 0), width=10)
    return im


def _stickered(im: Image.Image) -> Image.Image:
    """A cyan disc with a face over the middle: an overlay in colours of its own."""
    out = im.copy()
    draw = ImageDraw.Draw(out)
    draw.ellipse((96, 96, 160, 160), fill=(80, 200, 230), outline=(20, 20, 20), width=3)
    draw.ellipse((112, 116, 120, 124), fill=(20, 20, 20))
    draw.ellipse((136, 116, 144, 124), fill=(20, 20, 20))
    return out


def test_another_drawing_in_one_frame_is_told_apart_and_an_overlay_in_its_own_colours_is_not():
    sign, other = _sign(0), _sign(1)
    assert _judge(sign, other)
    assert _judge(sign.resize((220, 220)), other)  # a copy of one against the other
    assert not _judge(sign, _stickered(sign))
    # pictures stored at sizes far apart (an icon's renditions are redrawn) are not judged for it
    assert not _judge(sign.resize((128, 128)), other)


def _piece(knob: str) -> Image.Image:
    """A puzzle piece on white: a patterned square in the colours of `drawing(4)`, and a knob in
    the square's red on side `knob`."""
    im = Image.new("RGB", (256, 256), "white")
    body = augment.flatten(drawing(4)).convert("RGB").resize((90, 90))
    draw = ImageDraw.Draw(im)
    centre = {"right": (200, 128), "top": (128, 56), "left": (56, 128)}[knob]
    draw.ellipse((centre[0] - 20, centre[1] - 20, centre[0] + 20, centre[1] + 20), fill=(200, 30, 30), outline=(0, 0, 0), width=3)
    draw.rectangle((70, 70, 186, 186), fill=(200, 30, 30), outline=(0, 0, 0), width=3)
    im.paste(body, (83, 83))
    return im


def test_a_part_moved_elsewhere_is_told_apart_and_an_overlay_or_a_map_a_few_pixels_off_is_not():
    right, top = _piece("right"), _piece("top")
    assert _judge(right, top) and _judge(right, _piece("left"))
    assert _judge(right.resize((200, 200)), top)  # a copy of one against the other
    assert not _judge(right, right.resize((200, 200)))
    assert not _judge(right, _stickered(right))  # drawn on one side only, in colours of its own
    # the piece laid over itself 12 pixels off: slivers drawn on one side only, on both sides of it
    a = prepared(picture_bytes(right))
    off = np.array([[1.0, 0.0, 12.0], [0.0, 1.0, 12.0]])
    al = align(a, a, off)
    least = MOVED_AREA * np.count_nonzero(al.overlap)
    assert all(_largest(d)[1] >= least for d in _drawn_only(a, al.overlap, al.subject_j, al.backdrop_j))
    assert not moved_part(a, a, Differences(al), off)


def _spots(a: Image.Image, b: Image.Image):
    pa, pb = picture_bytes(a.convert("RGB")), picture_bytes(b.convert("RGB"))
    _, to_b = pair_map(keypoints(grey_at(pa, 256)), keypoints(grey_at(pb, 256)), 256)
    return differing_spots(prepared(pa), prepared(pb), to_b)


def _changed_box(a: Image.Image, b: Image.Image) -> tuple[float, float, float, float]:
    """The bounding box of the pixels that differ between two pictures of one size, in shares."""
    changed = np.abs(np.asarray(a.convert("L"), np.int16) - np.asarray(b.convert("L"), np.int16)) > 40
    ys, xs = np.nonzero(changed)
    h, w = changed.shape
    return xs.min() / w, ys.min() / h, (xs.max() + 1) / w, (ys.max() + 1) / h


def test_spots_outline_the_detail_two_items_differ_in_and_nothing_else():
    a, b, _ = series_items("letter")
    spots = _spots(a, b)
    assert 0 < spots.share < 0.05 and not spots.throughout and len(spots.boxes) >= 1
    x0, y0, x1, y1 = _changed_box(a, b)
    for x, y, w, h in (spots.boxes[0], spots.other_boxes[0]):  # the largest region holds the letter, on both sides
        assert x <= x0 and y <= y0 and x + w >= x1 and y + h >= y1
        assert w * h < 0.05
    padded = Image.new("RGB", (356, 256), "white")  # the other item moved 100 px right on a wider picture
    padded.paste(b.convert("RGB"), (100, 0))
    moved = _spots(a, padded)
    x, y, w, h = moved.boxes[0]
    assert moved.other_boxes[0] == pytest.approx(((256 * x + 100) / 356, y, 256 * w / 356, h), abs=0.02)
    assert all(0 <= v <= 1 for box in spots.boxes for v in box)


def test_spots_leave_out_a_backdrop_of_another_colour_and_a_copy_differs_nowhere():
    item = series_items("letter")[0]
    same = _spots(item, item)
    assert same.share == 0 and same.boxes == ()
    drawn = drawing(3)  # the drawing on a grey backdrop instead of white
    grey = Image.new("RGB", drawn.size, (120, 120, 120))
    grey.paste(drawn, mask=drawn.getchannel("A"))
    other = _spots(augment.flatten(drawn), grey)
    # neither the backdrop nor the outline all round; only a gap enclosed by the drawing shows grey
    assert not other.throughout and other.share < 0.02 and all(w * h < 0.02 for _, _, w, h in other.boxes)
    sticker = _spots(item, _stickered(item))
    x, y, w, h = sticker.boxes[0]
    assert x <= 96 / 256 and y <= 96 / 256 and x + w >= 160 / 256 and y + h >= 160 / 256


def test_pairs_without_a_map_or_a_picture_are_not_told_apart():
    a, b, _ = series_items("letter")
    pictures = {0: picture_bytes(a.convert("RGB")), 1: picture_bytes(b.convert("RGB"))}
    _, to_b = pair_map(keypoints(grey_at(pictures[0], 256)), keypoints(grey_at(pictures[1], 256)), 256)

    def picture(row: int) -> bytes:
        if row not in pictures:
            raise ImageSkip("gone")
        return pictures[row]

    maps = np.stack([to_b, np.full((2, 3), np.nan), to_b]).astype(np.float32)
    assert told_apart([0, 0, 0], [1, 1, 2], maps, picture).tolist() == [True, False, False]


def test_find_duplicates_keeps_a_copy_with_its_item_and_items_of_a_series_apart_unless_asked(series_index):
    _, idx, _ = series_index
    report = find_duplicates(idx)
    assert [sorted(m.path for m in g.members) for g in report.groups] == [["item0.png", "item0_copy.jpg"]]
    assert report.verified.told_apart >= 3  # each two items, and the copy with the other items
    assert "told apart by a differing detail, colourway or part" in duplicates_summary(report)

    together = CliRunner().invoke(cli, ["find-duplicates", "--index", str(idx), "--variants-together",
                                        "--format", "json", "-q"])
    assert together.exit_code == 0, together.output
    groups = json.loads(together.stdout)["groups"]
    assert [sorted(m["path"] for m in g["members"]) for g in groups] == [
        ["item0.png", "item0_copy.jpg", "item1.png", "item2.png"]]


def test_compare_says_where_two_items_differ_and_a_copy_differs_nowhere(tmp_path, tiny_model_file):
    items = series_items("letter")
    for k, item in enumerate(items[:2]):
        item.save(tmp_path / f"item{k}.png")
    items[0].resize((200, 200)).save(tmp_path / "copy.jpg", quality=95)
    model = str(checking_model(tiny_model_file, tmp_path / "checking.pt"))
    runner = CliRunner()
    doc = json.loads(runner.invoke(cli, ["compare", str(tmp_path / "item0.png"), str(tmp_path / "item1.png"), "--model", model,
                                         "--format", "json"]).stdout)
    assert doc["told_apart"] and not doc["same"]
    x0, y0, x1, y1 = _changed_box(items[0], items[1])
    x, y, w, h = doc["differs"]["boxes"][0]
    assert x <= x0 and y <= y0 and x + w >= x1 and y + h >= y1 and len(doc["differs"]["other_boxes"]) == len(doc["differs"]["boxes"])
    table = runner.invoke(cli, ["compare", str(tmp_path / "item0.png"), str(tmp_path / "copy.jpg"), "--model", model])
    assert table.exit_code == 0 and "A differs from B nowhere" in table.output, table.output
    assert "→ same" in table.output and "told apart" not in table.output
    apart = runner.invoke(cli, ["compare", str(tmp_path / "item0.png"), str(tmp_path / "item1.png"), "--model", model])
    assert "→ different (told apart" in apart.output, apart.output


def test_nothing_differs_keeps_the_members_that_differ_nowhere_from_their_keeper(tmp_path, tiny_model_file):
    catalog = tmp_path / "cat"
    catalog.mkdir()
    item = series_items("letter")[0]
    item.save(catalog / "item.png")
    item.resize((200, 200)).save(catalog / "item_copy.jpg", quality=90)
    marked = item.resize((220, 220))
    ImageDraw.Draw(marked).rectangle((150, 20, 200, 60), fill=(200, 30, 30))  # a sticker: it differs there
    marked.save(catalog / "item_marked.png")
    idx = tmp_path / "idx"
    index_catalog(catalog, idx, load_model(checking_model(tiny_model_file, tmp_path / "checking.pt")))
    runner = CliRunner()

    def run(*extra: str) -> str:
        result = runner.invoke(cli, ["find-duplicates", "--index", str(idx), "-q", *extra])
        assert result.exit_code == 0, result.output
        return result.stdout

    every = json.loads(run("--format", "json"))
    assert [sorted(m["path"] for m in g["members"]) for g in every["groups"]] == [["item.png", "item_copy.jpg", "item_marked.png"]]
    unchanged = json.loads(run("--format", "json", "--nothing-differs"))
    (group,) = unchanged["groups"]
    assert group["keep"] == "item.png" and [m["path"] for m in group["members"]] == ["item.png", "item_copy.jpg"]
    assert not group["exact"] and group["max_distance"] <= every["groups"][0]["max_distance"]
    assert unchanged["members_left_out"] == 1 and unchanged["sets_left_out"] == 0
    plan = run("--nothing-differs", "--action", "move", "--to", str(tmp_path / "moved"))  # a dry run
    assert "item_copy.jpg" in plan and "item_marked.png" not in plan
    assert "1 member of the sets shown" in runner.invoke(cli, ["find-duplicates", "--index", str(idx), "--nothing-differs"]).output


def test_find_duplicates_can_keep_only_the_sets_where_nothing_differs(series_index, tmp_path):
    _, idx, _ = series_index
    runner = CliRunner()

    def sets(*extra: str) -> dict:
        result = runner.invoke(cli, ["find-duplicates", "--index", str(idx), "--format", "json", "-q", *extra])
        assert result.exit_code == 0, result.output
        return json.loads(result.stdout)

    together = sets("--variants-together", "--nothing-differs")  # the items differ in their letter
    assert together["groups"] == [] and together["sets_left_out"] == 1
    apart = sets("--nothing-differs")  # the copy goes with its item and differs nowhere
    assert [sorted(m["path"] for m in g["members"]) for g in apart["groups"]] == [["item0.png", "item0_copy.jpg"]]
    assert apart["sets_left_out"] == 0 and sets()["sets_left_out"] == 0
    def plan(*extra: str) -> str:
        result = runner.invoke(cli, ["find-duplicates", "--index", str(idx), "--variants-together",
                                     "--action", "move", "--to", str(tmp_path / "moved"), *extra])
        assert result.exit_code == 0, result.output
        return result.output

    keeper = sets("--variants-together")["groups"][0]["keep"]
    other = next(f"item{k}.png" for k in (1, 2) if f"item{k}.png" != keeper)  # another item, not the one kept
    assert other in plan() and other not in plan("--nothing-differs")  # dry runs
    refused = runner.invoke(cli, ["find-duplicates", "--index", str(idx), "--no-verify", "--nothing-differs"])
    assert refused.exit_code != 0 and refused.output.count("Error:") == 1 and "Traceback" not in refused.output


def test_find_duplicates_against_can_keep_only_the_matches_that_differ_nowhere(series_index, tmp_path):
    _, idx, items = series_index
    incoming = tmp_path / "incoming"
    incoming.mkdir()
    items[1].resize((220, 220)).save(incoming / "upload.png")
    index_catalog(incoming, tmp_path / "up", load_model(tmp_path / "checking.pt"))

    def matches(*extra: str) -> set[str]:
        result = CliRunner().invoke(cli, ["find-duplicates", "--index", str(tmp_path / "up"), "--against", str(idx),
                                          "--variants-together", "--format", "json", "-q", *extra])
        assert result.exit_code == 0, result.output
        return {n["path"] for q in json.loads(result.stdout) for n in q["neighbors"]}

    assert {"item0.png", "item1.png", "item2.png"} <= matches()  # one design's items, with --variants-together
    assert matches("--nothing-differs") == {"item1.png"}  # the upload is a copy of this one


def test_query_says_where_a_query_differs_from_the_images_it_is_the_same_as(series_index, tmp_path):
    _, idx, items = series_index
    _stickered(items[0]).save(tmp_path / "stickered.png")  # a copy of item 0 with a sticker on it
    result = CliRunner().invoke(cli, ["query", str(tmp_path / "stickered.png"), "--index", str(idx), "--verify", "-k", "4",
                                      "--format", "json"])
    assert result.exit_code == 0, result.output
    found = json.loads(result.stdout)[0]["neighbors"]
    same = [n for n in found if n["same"]]
    assert same and all(n["differs"] is None for n in found if not n["same"])
    for n in same:  # the sticker is where the query differs
        x, y, w, h = n["differs"]["boxes"][0]
        assert x <= 96 / 256 and y <= 96 / 256 and x + w >= 160 / 256 and y + h >= 160 / 256
    table = CliRunner().invoke(cli, ["query", str(tmp_path / "stickered.png"), "--index", str(idx), "--verify", "-k", "4"])
    assert f"{same[0]['path']}  same, differs in 1 region" in table.output, table.output


def test_query_marks_the_items_it_tells_apart(series_index):
    catalog, idx, _ = series_index
    runner = CliRunner()
    result = runner.invoke(cli, ["query", str(catalog / "item1.png"), "--index", str(idx), "--verify", "-k", "4", "--format", "json"])
    assert result.exit_code == 0, result.output
    found = {n["path"]: n for n in json.loads(result.stdout)[0]["neighbors"]}
    assert found["item1.png"]["same"] and "told_apart" not in found["item1.png"]
    assert all(found[p].get("told_apart") and not found[p]["same"] for p in ("item0.png", "item2.png"))
    table = runner.invoke(cli, ["query", str(catalog / "item1.png"), "--index", str(idx), "--verify", "-k", "4"])
    assert "item0.png  different (told apart)" in table.output, table.output


def _flag(layout: str) -> Image.Image:
    """A flat flag: a green band at the hoist and white over red (`hoist`), or three vertical bands (`bands`)."""
    im = Image.new("RGB", (300, 200), "white")
    draw = ImageDraw.Draw(im)
    if layout == "hoist":
        draw.rectangle([0, 0, 89, 199], fill=(0, 130, 60))
        draw.rectangle([90, 100, 299, 199], fill=(210, 20, 30))
    else:
        draw.rectangle([0, 0, 99, 199], fill=(0, 130, 60))
        draw.rectangle([200, 0, 299, 199], fill=(210, 20, 30))
    return im


def _padded(im: Image.Image, colour=(120, 60, 160)) -> Image.Image:
    """`im` stretched a third wider, on a plain canvas, saved as a JPEG."""
    stretched = im.resize((im.width * 4 // 3, im.height))
    canvas = Image.new("RGB", (stretched.width + 80, stretched.height + 60), colour)
    canvas.paste(stretched, (40, 30))
    buf = io.BytesIO()
    canvas.save(buf, "JPEG", quality=80)
    return Image.open(buf).convert("RGB")


def _sky(mark: str) -> Image.Image:
    """One gradient, with a small circle or a small square somewhere on it."""
    g = np.linspace(0, 1, 200)[:, None, None]
    im = Image.fromarray((np.array([90, 140, 230]) * (1 - g) + np.array([230, 240, 250]) * g).repeat(300, axis=1).astype(np.uint8))
    draw = ImageDraw.Draw(im)
    if mark == "circle":
        draw.ellipse([40, 30, 70, 60], fill=(40, 40, 40))
    else:
        draw.rectangle([220, 120, 250, 150], fill=(40, 40, 40))
    return im


def _framed(a: Image.Image, b: Image.Image):
    return framed_map(prepared(picture_bytes(a)), prepared(picture_bytes(b)))


def test_a_flat_copy_is_laid_over_by_its_framing_and_other_drawings_or_skies_are_not():
    flag = _flag("hoist")
    for copy, mirrored in ((_padded(flag), False), (_padded(flag.transpose(Image.Transpose.FLIP_LEFT_RIGHT)), True)):
        to_b = _framed(flag, copy)
        assert to_b is not None
        a, b = prepared(picture_bytes(flag)), prepared(picture_bytes(copy))
        (ax0, ay0, ax1, ay1), (bx0, by0, bx1, by1) = (_subject_box(p) for p in (a, b))
        corners = rescaled(to_b, 256) @ np.array([[ax0, ax1], [ay0, ay1], [1.0, 1.0]])
        expected = [[bx1, bx0], [by0, by1]] if mirrored else [[bx0, bx1], [by0, by1]]
        np.testing.assert_allclose(corners, expected, atol=1.5)
    assert _framed(flag, _padded(_flag("bands"))) is None  # another flag, framed alike
    assert _framed(_sky("circle"), _sky("square")) is None  # one gradient, other marks on it


def _subject_box(p) -> tuple[float, float, float, float]:
    ys, xs = np.nonzero(p.subject)
    return xs.min(), ys.min(), xs.max() + 1, ys.max() + 1
