"""Read a local CelebA copy in its original layout (it cannot ship with the kit).

Expected layout of the folder (as CelebA's "Align&Cropped Images" and "Anno" downloads
unpack; ``list_eval_partition.txt`` comes from the "Eval" folder and is optional)::

    <celeba_dir>/img_align_celeba/000001.jpg ...
    <celeba_dir>/list_attr_celeba.txt
    <celeba_dir>/list_eval_partition.txt      (optional)

``list_attr_celeba.txt``: the first line is the number of images, the second the
attribute names separated by spaces, then one row per image: the file name and one
value per attribute, ``1`` or ``-1``, separated by one or more spaces.
``list_eval_partition.txt``: one ``<file> <0|1|2>`` row per image (0 train,
1 validation, 2 test).

Split: with the partition file, train is partition 0 and test is partition 2 (the
validation images are not used); without it, the first 90% of the rows of the
attribute file are train and the rest test (CelebA's official split is also by
position, so this is close to it).  ``n_train``/``n_test`` take the first images of
each split in file order, so only those are decoded.

Images are centre-cropped to a square (the largest one, or ``crop`` pixels of the
original) and resized with Pillow to ``image_size``; float32 RGB in [0, 1].
Attributes are float32 0/1 in the order asked for.
"""

from __future__ import annotations

import concurrent.futures
import difflib
import math
import os
from pathlib import Path

import numpy as np

from autograder.errors import KitError

# Bump when decoding changes: it is part of the face cache key.
LOADER_VERSION = 1

IMAGE_DIR = "img_align_celeba"
ATTR_FILE = "list_attr_celeba.txt"
PARTITION_FILE = "list_eval_partition.txt"
TRAIN_FRACTION = 0.9  # used only without the partition file

# CelebA's 40 attributes, in the order of list_attr_celeba.txt.
CELEBA_ATTRIBUTES = (
    "5_o_Clock_Shadow", "Arched_Eyebrows", "Attractive", "Bags_Under_Eyes", "Bald", "Bangs",
    "Big_Lips", "Big_Nose", "Black_Hair", "Blond_Hair", "Blurry", "Brown_Hair", "Bushy_Eyebrows",
    "Chubby", "Double_Chin", "Eyeglasses", "Goatee", "Gray_Hair", "Heavy_Makeup", "High_Cheekbones",
    "Male", "Mouth_Slightly_Open", "Mustache", "Narrow_Eyes", "No_Beard", "Oval_Face", "Pale_Skin",
    "Pointy_Nose", "Receding_Hairline", "Rosy_Cheeks", "Sideburns", "Smiling", "Straight_Hair",
    "Wavy_Hair", "Wearing_Earrings", "Wearing_Hat", "Wearing_Lipstick", "Wearing_Necklace",
    "Wearing_Necktie", "Young",
)  # fmt: skip

_LAYOUT = (
    f"the folder that holds {IMAGE_DIR}/ (the JPEGs) and {ATTR_FILE}, "
    f"optionally with {PARTITION_FILE}, as CelebA unpacks"
)


def _root(celeba_dir: str | os.PathLike) -> Path:
    root = Path(celeba_dir).expanduser()
    if not root.is_dir():
        raise KitError(f"the CelebA folder {root} does not exist; point celeba_dir at {_LAYOUT}.")
    if not (root / ATTR_FILE).is_file():
        raise KitError(
            f"the CelebA attribute file {root / ATTR_FILE} is missing; copy {ATTR_FILE} from CelebA's "
            f"Anno folder into {root} (celeba_dir must be {_LAYOUT})."
        )
    if not (root / IMAGE_DIR).is_dir():
        raise KitError(
            f"the CelebA image folder {root / IMAGE_DIR} is missing; unpack img_align_celeba.zip into "
            f"{root} (celeba_dir must be {_LAYOUT})."
        )
    return root


def _read_lines(path: Path) -> list[str]:
    try:
        return path.read_text(encoding="utf-8", errors="strict").splitlines()
    except UnicodeDecodeError as exc:
        raise KitError(f"{path} is not a text file ({exc}); replace it with CelebA's original.") from None
    except OSError as exc:
        raise KitError(f"cannot read {path} ({exc.strerror or exc}); check its permissions.") from None


def read_attributes(celeba_dir: str | os.PathLike) -> tuple[list[str], tuple[str, ...], np.ndarray]:
    """Parse ``list_attr_celeba.txt``: (file names, attribute names, int8 array of +-1)."""
    path = _root(celeba_dir) / ATTR_FILE
    lines = _read_lines(path)
    if len(lines) < 2:
        raise KitError(
            f"{path} is too short: it needs the image count on line 1 and the attribute names on line 2; "
            "replace it with CelebA's original."
        )
    try:
        count = int(lines[0].strip())
    except ValueError:
        raise KitError(
            f"line 1 of {path} should be the number of images, found {lines[0].strip()[:40]!r}; "
            "replace the file with CelebA's original."
        ) from None
    names = tuple(lines[1].split())
    if not names:
        raise KitError(f"line 2 of {path} should list the attribute names, but it is empty; replace the file.")
    if len(set(names)) != len(names):
        dup = sorted({x for x in names if names.count(x) > 1})
        raise KitError(f"line 2 of {path} names {', '.join(dup)} twice; replace the file with CelebA's original.")
    files: list[str] = []
    plus = bytearray()  # 1 where the value is 1, 0 where it is -1 (row-major)
    ok = {"1", "-1"}
    width = len(names) + 1
    for no, line in enumerate(lines[2:], start=3):
        tokens = line.split()
        if not tokens:
            continue
        if len(tokens) != width:
            raise KitError(
                f"line {no} of {path} has {len(tokens) - 1} values for {len(names)} attributes "
                f"({line.strip()[:60]!r}); every row must be a file name and one 1/-1 per attribute."
            )
        values = tokens[1:]
        if not ok.issuperset(values):
            c = next(i for i, v in enumerate(values) if v not in ok)
            raise KitError(
                f"line {no} of {path} ({tokens[0]}) has {values[c]!r} for {names[c]}; "
                "CelebA attributes must be 1 or -1."
            )
        files.append(tokens[0])
        plus.extend([v == "1" for v in values])
    if len(files) != count:
        raise KitError(
            f"{path} says it lists {count} images (line 1) but has {len(files)} rows; "
            "the file is truncated or edited: fix line 1 or restore the original file."
        )
    if len(set(files)) != len(files):
        seen: set[str] = set()
        for repeated in files:  # the first file listed a second time
            if repeated in seen:
                break
            seen.add(repeated)
        raise KitError(f"{path} lists {repeated} twice; restore the original file.")
    table = np.frombuffer(bytes(plus), np.uint8).reshape(len(files), len(names)).astype(np.int8)
    return files, names, 2 * table - 1


def read_partition(celeba_dir: str | os.PathLike, files: list[str]) -> np.ndarray | None:
    """Partition (0 train, 1 val, 2 test) of each file, or None without the partition file."""
    path = _root(celeba_dir) / PARTITION_FILE
    if not path.is_file():
        return None
    part: dict[str, int] = {}
    for no, line in enumerate(_read_lines(path), start=1):
        tokens = line.split()
        if not tokens:
            continue
        if len(tokens) != 2 or tokens[1] not in ("0", "1", "2"):
            raise KitError(
                f"line {no} of {path} should be '<file> <0|1|2>', found {line.strip()[:60]!r}; "
                f"restore the original file or delete it to use a fixed split."
            )
        part[tokens[0]] = int(tokens[1])
    missing = [f for f in files if f not in part]
    if missing:
        raise KitError(
            f"{path} has no partition for {missing[0]} ({len(missing)} files of {ATTR_FILE} are missing); "
            "restore the original file or delete it to use a fixed split."
        )
    return np.array([part[f] for f in files], np.int8)


def fingerprint(celeba_dir: str | os.PathLike) -> tuple:
    """What identifies a CelebA copy for caching: its path and its annotation files' sizes and times."""
    root = _root(celeba_dir)

    def stamp(p: Path):
        try:
            st = p.stat()
        except OSError:
            return None
        return (st.st_size, st.st_mtime_ns)

    return (str(root.resolve()), stamp(root / ATTR_FILE), stamp(root / PARTITION_FILE), stamp(root / IMAGE_DIR))


def load_image(path: Path, image_size: int, crop: int | None = None) -> np.ndarray:
    """One image: centre square crop (``crop`` px of the original, default the largest), resized."""
    from PIL import Image

    if not path.is_file():
        raise KitError(
            f"the image {path} listed in {ATTR_FILE} is missing; unpack all of img_align_celeba.zip into "
            f"{path.parent}, or ask for fewer images (n_train/n_test)."
        )
    try:
        with Image.open(path) as im:
            w, h = im.size
            side = min(w, h) if crop is None else min(crop, w, h)
            scale = image_size / side
            im.draft("RGB", (max(1, math.ceil(w * scale)), max(1, math.ceil(h * scale))))
            k = im.size[0] / w  # draft may decode at 1/2, 1/4 or 1/8 scale
            rgb = im.convert("RGB")
            s = side * k
            left, top = (rgb.size[0] - s) / 2, (rgb.size[1] - s) / 2
            small = rgb.resize((image_size, image_size), Image.Resampling.BICUBIC, box=(left, top, left + s, top + s))
            arr = np.divide(np.asarray(small), np.float32(255), dtype=np.float32)  # exactly k/255
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        raise KitError(
            f"the image {path} is corrupt or not a JPEG ({exc}); re-extract it from img_align_celeba.zip."
        ) from None
    return arr


def _split(root: Path, files, partition, n_train, n_test):
    if partition is None:
        cut = int(round(TRAIN_FRACTION * len(files)))
        splits = (np.arange(cut), np.arange(cut, len(files)))
        how = (f"the first {TRAIN_FRACTION:.0%} of the rows of {ATTR_FILE}", f"the last {1 - TRAIN_FRACTION:.0%}")
    else:
        splits = (np.flatnonzero(partition == 0), np.flatnonzero(partition == 2))
        how = (f"partition 0 of {PARTITION_FILE}", f"partition 2 of {PARTITION_FILE}")
    chosen = []
    for name, idx, n, where in zip(("n_train", "n_test"), splits, (n_train, n_test), how):
        if n is None:
            chosen.append(idx)
            continue
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 0:
            raise KitError(f"{name} must be a whole number >= 0 or None (all), got {n!r}.")
        if n > len(idx):
            raise KitError(
                f"{name}={n} but the CelebA copy in {root} has only {len(idx)} such images ({where}); "
                f"pass {name}={len(idx)} or fewer, or None for all."
            )
        chosen.append(idx[:n])
    return chosen


def load_celeba(
    celeba_dir: str | os.PathLike,
    *,
    image_size: int = 64,
    attributes: tuple[str, ...] | list[str] | None = None,
    n_train: int | None = None,
    n_test: int | None = None,
    crop: int | None = None,
    workers: int = 2,
):
    """Load CelebA from ``celeba_dir``.

    Returns ``((x_train, a_train), (x_test, a_test), names)``: images float32 in
    [0, 1] of shape (n, image_size, image_size, 3), attributes float32 0/1 with one
    column per name in ``names`` (``attributes``, default all 40).
    """
    if isinstance(image_size, bool) or not isinstance(image_size, (int, np.integer)) or image_size < 1:
        raise KitError(f"image_size must be a whole number >= 1, got {image_size!r}.")
    if crop is not None and (isinstance(crop, bool) or not isinstance(crop, (int, np.integer)) or crop < 1):
        raise KitError(f"crop must be a whole number of pixels >= 1 or None, got {crop!r}.")
    root = _root(celeba_dir)
    files, names, table = read_attributes(root)
    wanted = tuple(names if attributes is None else attributes)
    for name in wanted:
        if name not in names:
            close = difflib.get_close_matches(str(name), names, n=1)
            hint = f"did you mean {close[0]!r}? " if close else ""
            raise KitError(
                f"unknown CelebA attribute {name!r}: {hint}{root / ATTR_FILE} has {', '.join(names)}; "
                "use one of those names (CelebA's spelling, e.g. 'Wearing_Hat')."
            )
    cols = [names.index(a) for a in wanted]
    partition = read_partition(root, files)
    train, test = _split(root, files, partition, n_train, n_test)
    image_dir = root / IMAGE_DIR

    def images(idx: np.ndarray) -> np.ndarray:
        out = np.empty((len(idx), image_size, image_size, 3), np.float32)

        def one(j: int) -> None:
            out[j] = load_image(image_dir / files[idx[j]], image_size, crop)

        if workers <= 1 or len(idx) < 8:
            for j in range(len(idx)):
                one(j)
        else:
            with concurrent.futures.ThreadPoolExecutor(workers) as pool:
                futures = [pool.submit(one, j) for j in range(len(idx))]
                try:
                    for f in futures:
                        f.result()
                except BaseException:
                    pool.shutdown(cancel_futures=True)
                    raise
        return out

    def attrs(idx: np.ndarray) -> np.ndarray:
        return (table[np.ix_(idx, np.asarray(cols))] > 0).astype(np.float32).reshape(len(idx), len(cols))

    return (images(train), attrs(train)), (images(test), attrs(test)), wanted
