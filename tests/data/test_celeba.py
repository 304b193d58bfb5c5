"""The CelebA loader, on a tiny committed copy in CelebA's exact layout and on broken copies made here.

The committed fixture (tests/data/fixtures/celeba_tiny) is written by `write_celeba`:
regenerate it with `python tests/data/test_celeba.py`.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from autograder.data import celeba, faces
from autograder.data.celeba import CELEBA_ATTRIBUTES
from autograder.data.faces import ATTRIBUTES, load_faces
from autograder.errors import KitError

FIXTURE = Path(__file__).parent / "fixtures" / "celeba_tiny"

# Six images: a solid colour each, inside a black band of two rows at the top and the
# bottom (20x24 px, portrait like CelebA's 178x218), which the centre crop removes.
COLOURS = [(220, 30, 30), (30, 200, 40), (40, 60, 220), (230, 220, 40), (40, 210, 220), (200, 50, 200)]
# The kit's eight attributes per image, in the order of ATTRIBUTES.
KIT = [
    [1, 0, 1, 0, 0, 0, 1, 0],
    [0, 1, 0, 0, 1, 1, 0, 1],
    [1, 1, 1, 1, 0, 0, 0, 0],
    [0, 0, 0, 0, 1, 1, 1, 1],
    [1, 0, 0, 1, 1, 0, 1, 1],
    [0, 1, 1, 0, 0, 1, 0, 0],
]
PARTITION = [0, 0, 0, 1, 2, 2]
FILES = [f"{i:06d}.jpg" for i in range(1, 7)]


def attribute_rows() -> np.ndarray:
    """+-1 for the 40 CelebA columns: KIT where it applies, a fixed pattern elsewhere."""
    rows = np.array([[1 if (3 * i + 7 * k) % 5 < 2 else -1 for k in range(40)] for i in range(6)])
    for j, name in enumerate(ATTRIBUTES):
        rows[:, CELEBA_ATTRIBUTES.index(name)] = 2 * np.array(KIT)[:, j] - 1
    return rows


def write_celeba(root: Path, *, partition: bool = True) -> Path:
    """A CelebA copy in the original layout (values right-aligned in 3 columns, like the real file)."""
    (root / "img_align_celeba").mkdir(parents=True, exist_ok=True)
    for name, colour in zip(FILES, COLOURS):
        im = Image.new("RGB", (20, 24), colour)
        im.paste((0, 0, 0), (0, 0, 20, 2))
        im.paste((0, 0, 0), (0, 22, 20, 24))
        im.save(root / "img_align_celeba" / name, quality=95, subsampling=0)
    lines = [str(len(FILES)), " ".join(CELEBA_ATTRIBUTES) + " "]
    lines += [name + "".join(f"{v:3d}" for v in row) for name, row in zip(FILES, attribute_rows())]
    (root / "list_attr_celeba.txt").write_text("\n".join(lines) + "\n")
    if partition:
        (root / "list_eval_partition.txt").write_text("".join(f"{f} {p}\n" for f, p in zip(FILES, PARTITION)))
    return root


@pytest.fixture
def copy(tmp_path) -> Path:
    """A scratch copy of the committed fixture, to break."""
    return Path(shutil.copytree(FIXTURE, tmp_path / "celeba"))


def test_the_committed_fixture_has_celebas_layout():
    text = (FIXTURE / "list_attr_celeba.txt").read_text().splitlines()
    assert text[0] == "6" and text[1].split() == list(CELEBA_ATTRIBUTES)
    assert re.fullmatch(r"000001\.jpg( {1,2}-?1){40}", text[2]), "values separated by one or more spaces"
    assert sorted(p.name for p in (FIXTURE / "img_align_celeba").iterdir()) == FILES
    assert sum(p.stat().st_size for p in FIXTURE.rglob("*") if p.is_file()) < 16_000


def test_loads_the_official_split_with_the_right_attributes_and_pixels():
    (x, a), (xt, at), names = celeba.load_celeba(FIXTURE, image_size=8, attributes=ATTRIBUTES)
    assert names == ATTRIBUTES
    assert x.shape == (3, 8, 8, 3) and xt.shape == (2, 8, 8, 3), "partition 0 is train, 2 test, 1 unused"
    assert x.dtype == np.float32 and a.dtype == np.float32 and 0 <= x.min() and x.max() <= 1
    np.testing.assert_array_equal(a, np.array(KIT[:3], np.float32))
    np.testing.assert_array_equal(at, np.array(KIT[4:], np.float32))
    # the centre crop drops the black bands: every pixel is the image's colour
    for img, colour in zip(np.concatenate([x, xt]), COLOURS[:3] + COLOURS[4:]):
        np.testing.assert_allclose(img.reshape(-1, 3).mean(0), np.array(colour) / 255, atol=0.03)
        assert img.min() > 0.05 or min(colour) < 60


def test_all_forty_attributes_by_default_and_the_first_n_only():
    (x, a), (xt, at), names = celeba.load_celeba(FIXTURE, image_size=5, n_train=2, n_test=1)
    assert names == CELEBA_ATTRIBUTES and a.shape == (2, 40) and x.shape == (2, 5, 5, 3) and len(xt) == 1
    np.testing.assert_array_equal(a, (attribute_rows()[:2] > 0).astype(np.float32))
    np.testing.assert_array_equal(at, (attribute_rows()[4:5] > 0).astype(np.float32))
    (x, a), (xt, _), names = celeba.load_celeba(FIXTURE, image_size=5, attributes=["Young", "Male"], n_test=0)
    assert names == ("Young", "Male") and len(xt) == 0
    np.testing.assert_array_equal(a, np.array(KIT)[:3][:, [7, 2]])


def test_without_the_partition_file_the_split_is_fixed_by_position(copy):
    (copy / "list_eval_partition.txt").unlink()
    (x, a), (xt, at), _ = celeba.load_celeba(copy, image_size=4, attributes=ATTRIBUTES)
    assert len(x) == 5 and len(xt) == 1, "the first 90% of the rows are train"
    np.testing.assert_array_equal(at, np.array(KIT[5:], np.float32))
    again = celeba.load_celeba(copy, image_size=4, attributes=ATTRIBUTES)
    np.testing.assert_array_equal(again[0][0], x)


def test_crop_option_and_more_images_than_the_split_has():
    (x, _), _, _ = celeba.load_celeba(FIXTURE, image_size=4, crop=10, n_test=0)
    np.testing.assert_allclose(x[0].reshape(-1, 3).mean(0), np.array(COLOURS[0]) / 255, atol=0.03)
    with pytest.raises(KitError, match=r"n_train=4 .* only 3"):
        celeba.load_celeba(FIXTURE, image_size=4, n_train=4)


def test_load_faces_delegates_to_celeba_and_caches(tmp_path, monkeypatch):
    (x, a), (xt, at), names = load_faces(
        source="celeba", celeba_dir=FIXTURE, image_size=16, n_train=None, n_test=None, cache_dir=tmp_path
    )
    assert names == ATTRIBUTES and x.shape == (3, 16, 16, 3) and xt.shape == (2, 16, 16, 3)
    np.testing.assert_array_equal(a, np.array(KIT[:3], np.float32))
    assert len(list(tmp_path.glob("faces-celeba-*.npz"))) == 1

    def boom(*args, **kwargs):
        raise AssertionError("the cache should have answered")

    monkeypatch.setattr(celeba, "load_celeba", boom)
    (x2, a2), (xt2, at2), _ = load_faces(
        source="celeba", celeba_dir=FIXTURE, image_size=16, n_train=None, n_test=None, cache_dir=tmp_path
    )
    for u, v in ((x, x2), (a, a2), (xt, xt2), (at, at2)):
        np.testing.assert_array_equal(u, v)
        assert u.dtype == v.dtype


def test_load_faces_celeba_needs_a_folder(monkeypatch, tmp_path):
    monkeypatch.delenv("CELEBA_DIR", raising=False)
    with pytest.raises(KitError, match="celeba_dir"):
        load_faces(source="celeba", cache_dir=tmp_path)
    monkeypatch.setenv("CELEBA_DIR", str(FIXTURE))
    _, (xt, _), _ = load_faces(source="celeba", image_size=16, n_train=1, n_test=1, cache_dir=tmp_path)
    assert xt.shape == (1, 16, 16, 3)


# ----------------------------------------------------------------------------- errors


def test_missing_folder_says_what_layout_is_expected(tmp_path):
    with pytest.raises(KitError, match="img_align_celeba.*list_attr_celeba.txt") as e:
        celeba.load_celeba(tmp_path / "nowhere")
    assert str(tmp_path / "nowhere") in str(e.value)


def test_missing_attribute_file(copy):
    (copy / "list_attr_celeba.txt").unlink()
    with pytest.raises(KitError, match="list_attr_celeba.txt is missing"):
        celeba.load_celeba(copy)


def test_missing_image_folder(copy):
    shutil.rmtree(copy / "img_align_celeba")
    with pytest.raises(KitError, match="img_align_celeba is missing"):
        celeba.load_celeba(copy)


def _edit_attr(copy: Path, edit) -> Path:
    path = copy / "list_attr_celeba.txt"
    lines = path.read_text().splitlines()
    edit(lines)
    path.write_text("\n".join(lines) + "\n")
    return path


def test_count_line_not_matching_the_rows(copy):
    path = _edit_attr(copy, lambda lines: lines.__setitem__(0, "7"))
    with pytest.raises(KitError, match=r"says it lists 7 images .* has 6 rows") as e:
        celeba.load_celeba(copy)
    assert str(path) in str(e.value)
    _edit_attr(copy, lambda lines: lines.__setitem__(0, "six"))
    with pytest.raises(KitError, match="line 1 .* number of images"):
        celeba.load_celeba(copy)


def test_unknown_attribute_name():
    with pytest.raises(KitError, match="'Wearing_Hats'.*list_attr_celeba.txt"):
        celeba.load_celeba(FIXTURE, attributes=["Smiling", "Wearing_Hats"])


def test_a_value_other_than_plus_minus_one(copy):
    path = _edit_attr(copy, lambda lines: lines.__setitem__(4, lines[4][:-2] + " 0"))
    with pytest.raises(KitError, match=r"line 5 .*000003.jpg.* '0' for Young.* 1 or -1") as e:
        celeba.load_celeba(copy)
    assert str(path) in str(e.value)


def test_a_row_with_too_few_values(copy):
    _edit_attr(copy, lambda lines: lines.__setitem__(3, lines[3][:-3]))
    with pytest.raises(KitError, match="line 4 .* 39 values for 40 attributes"):
        celeba.load_celeba(copy)


def test_a_missing_image_file_is_named(copy):
    (copy / "img_align_celeba" / "000002.jpg").unlink()
    with pytest.raises(KitError, match=r"000002\.jpg .*missing"):
        celeba.load_celeba(copy)
    # not needed when it is not asked for
    (x, _), _, _ = celeba.load_celeba(copy, image_size=4, n_train=1, n_test=0)
    assert len(x) == 1


@pytest.mark.parametrize("damage", ["garbage", "truncated"])
def test_a_corrupt_jpeg_is_named(copy, damage):
    path = copy / "img_align_celeba" / "000003.jpg"
    data = path.read_bytes()
    path.write_bytes(b"this is not a jpeg" * 10 if damage == "garbage" else data[: len(data) // 2])
    with pytest.raises(KitError, match=r"000003\.jpg is corrupt"):
        celeba.load_celeba(copy, image_size=8)


def test_a_broken_partition_file(copy):
    part = copy / "list_eval_partition.txt"
    part.write_text(part.read_text().replace("000004.jpg 1", "000004.jpg 3"))
    with pytest.raises(KitError, match="line 4 of .*list_eval_partition.txt"):
        celeba.load_celeba(copy)
    part.write_text("".join(f"{f} 0\n" for f in FILES[:5]))
    with pytest.raises(KitError, match="no partition for 000006.jpg"):
        celeba.load_celeba(copy)


def test_load_faces_passes_celeba_errors_through(tmp_path):
    with pytest.raises(KitError, match="does not exist"):
        load_faces(source="celeba", celeba_dir=tmp_path / "nowhere", cache_dir=tmp_path)
    assert faces.ATTRIBUTES == ATTRIBUTES


if __name__ == "__main__":
    shutil.rmtree(FIXTURE, ignore_errors=True)
    write_celeba(FIXTURE)
    print("wrote", FIXTURE, sum(p.stat().st_size for p in FIXTURE.rglob("*") if p.is_file()), "bytes")
