"""The packed training corpus (pipelines/build_corpus.py, vidcolor/train/corpus.py) and the
three-stage training that reads it: pictures read from a git repository at a pinned commit,
duplicates, grey pictures, graphics and held-out look-alikes kept out of training, a
content-defined holdout, and a low-resolution first stage."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from helpers import SMALL

from vidcolor.errors import InputError
from vidcolor.train.corpus import CorpusFilter, open_corpus
from vidcolor.train.modes import build_trainer
from vidcolor.train.recipe import recipe_from_dict

ROOT = Path(__file__).resolve().parent.parent


def photo(seed: int, h: int = 150, w: int = 200) -> np.ndarray:
    """A colourful, textured BGR picture (smooth blobs of colour plus noise): photo-like statistics."""
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, (6, 8, 3), dtype=np.uint8)
    img = cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC).astype(np.int16)
    img += rng.integers(-25, 26, img.shape, dtype=np.int16)
    return np.clip(img, 0, 255).astype(np.uint8)


def git(repo: Path, *args: str) -> str:
    env = {
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@t",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@t",
        "PATH": "/usr/bin:/bin",
    }
    return subprocess.run(
        ["git", "-C", str(repo), *args], check=True, capture_output=True, text=True, env=env
    ).stdout.strip()


@pytest.fixture(scope="module")
def corpus_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("corpus")
    # A "public repository" with photos, a duplicate, a grey picture, a logo and a BSDS look-alike.
    work = base / "mirror" / "someone+photos" / "repo"
    pics = work / "pics"
    pics.mkdir(parents=True)
    for i in range(40):
        cv2.imwrite(str(pics / f"p{i:02d}.jpg"), photo(i))
    cv2.imwrite(str(pics / "copy.jpg"), photo(3))  # the same picture re-encoded: a near-duplicate
    cv2.imwrite(str(pics / "grey.png"), cv2.cvtColor(cv2.cvtColor(photo(99), cv2.COLOR_BGR2GRAY), cv2.COLOR_GRAY2BGR))
    logo = np.full((150, 150, 3), 255, np.uint8)
    cv2.rectangle(logo, (30, 30), (120, 120), (0, 0, 200), -1)
    cv2.imwrite(str(pics / "logo.png"), logo)
    cv2.imwrite(str(pics / "tiny.jpg"), photo(7, 40, 40))
    (work / "skipme").mkdir()
    cv2.imwrite(str(work / "skipme" / "x.jpg"), photo(50))
    git(work, "init", "-q")
    git(work, "add", ".")
    git(work, "commit", "-q", "-m", "photos")
    commit = git(work, "rev-parse", "HEAD")
    cv2.imwrite(str(pics / "later.jpg"), photo(60))  # committed after the pin: never read
    git(work, "add", ".")
    git(work, "commit", "-q", "-m", "later")

    shared = base / "shared"
    (shared / "val" / "bsds500").mkdir(parents=True)
    cv2.imwrite(str(shared / "val" / "bsds500" / "held.jpg"), photo(11))  # p11 must stay out
    (shared / "video-tune").mkdir()
    (shared / "train" / "urban_scenes").mkdir(parents=True)
    for i in range(3):
        cv2.imwrite(str(shared / "train" / "urban_scenes" / f"u{i}.png"), photo(200 + i, 200, 200))
    (shared / "SOURCES.tsv").write_text(f"# header\nsomeone/photos\t{commit}\tpics .\tskipme\t44\t200x150\ttest\tCC0\n")
    (base / "extra.tsv").write_text("# no extra sources\n")
    out = base / "packed"
    done = build_corpus(base, out, "--extra", str(base / "extra.tsv"), "--holdout-every", "4")
    assert done.returncode == 0, done.stderr
    return out


def build_corpus(base: Path, out: Path, *args: str) -> subprocess.CompletedProcess:
    """pipelines/build_corpus.py over the fixture's mirror and shared folder (under ``base``)."""
    cmd = [
        sys.executable,
        str(ROOT / "pipelines" / "build_corpus.py"),
        "--mirror",
        str(base / "mirror"),
        "--shared",
        str(base / "shared"),
        "--out",
        str(out),
        "--workers",
        "1",
        *args,
    ]
    return subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)


def test_corpus_keeps_unique_real_photos_and_judges_the_rest(corpus_dir: Path):
    corpus = open_corpus(corpus_dir)
    paths = {r.path for r in corpus.rows}
    assert "pics/later.jpg" not in paths  # read at the pinned commit only
    assert "skipme/x.jpg" not in paths and "pics/tiny.jpg" not in paths
    assert "pics/p11.jpg" not in paths  # looks like a held-out picture
    assert ("pics/p03.jpg" in paths) != ("pics/copy.jpg" in paths)  # one of a duplicate pair
    assert len(corpus.rows) == 3 + 40 - 1 + 1 + 1  # urban + photos - held-out + grey + logo
    assert corpus.low.shape[1:] == (64, 64, 3) and corpus.high.shape[1:] == (192, 192, 3)
    usable = {r.path for r in corpus.usable(CorpusFilter())}
    assert "pics/grey.png" not in usable and "pics/logo.png" not in usable
    assert {f"pics/p{i:02d}.jpg" for i in range(40) if i not in (3, 11)} <= usable
    # Every packed row's pixels are its picture's (the low array is the short side, centre crop).
    row = next(r for r in corpus.rows if r.path == "pics/p05.jpg")
    expected = cv2.cvtColor(cv2.resize(photo(5)[:, 25:175], (64, 64), interpolation=cv2.INTER_AREA), cv2.COLOR_BGR2RGB)
    assert np.abs(corpus.low[row.low].astype(int) - expected.astype(int)).mean() < 6


def test_corpus_fingerprint_is_checked(corpus_dir: Path):
    corpus = open_corpus(corpus_dir)
    assert open_corpus(corpus_dir, corpus.fingerprint).fingerprint == corpus.fingerprint
    with pytest.raises(InputError, match="fingerprint"):
        open_corpus(corpus_dir, "0" * 64)
    with pytest.raises(InputError, match="build_corpus"):
        open_corpus(corpus_dir / "missing")


def test_appended_sources_train_and_keep_every_packed_row(corpus_dir: Path, tmp_path: Path):
    base = corpus_dir.parent
    work = base / "mirror" / "farm+cows" / "repo"
    if not work.exists():
        (work / "img").mkdir(parents=True)
        for i in range(6):
            cv2.imwrite(str(work / "img" / f"c{i}.jpg"), photo(300 + i))
        cv2.imwrite(str(work / "img" / "again.jpg"), photo(5), [cv2.IMWRITE_JPEG_QUALITY, 70])  # re-encoded p05
        cv2.imwrite(str(work / "img" / "held.jpg"), photo(11))  # a BSDS look-alike
        git(work, "init", "-q")
        git(work, "add", ".")
        git(work, "commit", "-q", "-m", "cows")
    tsv = tmp_path / "more.tsv"
    tsv.write_text(f"farm/cows\t{git(work, 'rev-parse', 'HEAD')}\timg\t\t8\t200x150\tcows\tCC BY 4.0\n")
    out = tmp_path / "packed"
    shutil.copytree(corpus_dir, out)
    before = open_corpus(out)
    # An append interrupted earlier left bytes behind: they are cut back first.
    with (out / "low.u8").open("ab") as fh:
        fh.write(b"x" * 1000)
    done = build_corpus(base, out, "--append", str(tsv))
    assert done.returncode == 0, done.stderr
    after = open_corpus(out)
    assert after.fingerprint != before.fingerprint
    assert after.rows[: len(before.rows)] == before.rows  # every packed row keeps its number
    assert np.array_equal(after.low[: len(before.low)], before.low)
    assert np.array_equal(after.high[: len(before.high)], before.high)
    new = after.rows[len(before.rows) :]
    assert sorted(r.path for r in new) == [f"img/c{i}.jpg" for i in range(6)]  # no duplicate, no look-alike
    assert not any(r.holdout for r in new)  # the holdout stays the same pictures
    assert [r.low for r in new] == list(range(len(before.low), len(after.low)))
    _, high, held = after.split(CorpusFilter())
    assert np.array_equal(held, before.split(CorpusFilter())[2]) and {r.high for r in new} <= set(high.tolist())
    again = build_corpus(base, out, "--append", str(tsv))  # running it again changes nothing
    assert again.returncode == 0 and "already in the corpus" in again.stdout
    assert open_corpus(out).fingerprint == after.fingerprint
    missing = build_corpus(base, tmp_path / "none", "--append", str(tsv))
    assert missing.returncode != 0 and "build it first" in missing.stderr
    short = tmp_path / "short"
    shutil.copytree(corpus_dir, short)
    os.truncate(short / "high.u8", 1000)  # a damaged array is refused, never padded
    damaged = build_corpus(base, short, "--append", str(tsv))
    assert damaged.returncode != 0 and "shorter than corpus.json" in damaged.stderr
    assert (short / "high.u8").stat().st_size == 1000


def corpus_recipe(corpus_dir: Path, out: Path, **train: object):
    return recipe_from_dict(
        {
            "name": "tiny-corpus",
            "model": {**SMALL, "hints": True},
            "data": {"corpus": str(corpus_dir), "holdout": 4},
            "augment": {"low_size": 32, "size": 64, "final_size": 96, "p_grain": 0.0, "p_scratches": 0.0},
            "train": {
                "mode": "classification",
                "steps": 5,
                "low_steps": 2,
                "low_batch_size": 8,
                "final_steps": 1,
                "batch_size": 4,
                "pretrained_encoder": False,
                "checkpoint_every": 100,
                "sample_every": 100,
                "log_every": 1,
                "out_dir": str(out),
            }
            | train,
        }
    )


def test_three_stages_train_from_the_corpus(corpus_dir: Path, tmp_path: Path):
    corpus = open_corpus(corpus_dir)
    _, high, held = corpus.split(CorpusFilter())
    # The held-out rows (a content-defined 1 in 4 here, 1 in 64 by default) never train.
    assert not set(high.tolist()) & set(held.tolist())
    assert len(held) >= 4
    trainer = build_trainer(corpus_recipe(corpus_dir, tmp_path / "run"))
    sizes = [trainer.batch(step)[0].shape for step in range(5)]
    assert sizes[0] == (8, 3, 32, 32) and sizes[1] == (8, 3, 32, 32)  # the low-resolution stage
    assert sizes[2] == (4, 3, 64, 64) and sizes[4] == (4, 3, 96, 96)  # main, then final
    result = trainer.run()
    assert result.steps == 5 and np.isfinite(result.holdout_psnr)


def test_corpus_recipe_checks(corpus_dir: Path, tmp_path: Path):
    with pytest.raises(InputError, match="low_size"):
        recipe_from_dict({"data": {"corpus": str(corpus_dir)}, "train": {"steps": 4, "low_steps": 2}})
    with pytest.raises(InputError, match="needs data.corpus"):
        recipe_from_dict({"augment": {"low_size": 32}, "train": {"steps": 4, "low_steps": 2}})
    with pytest.raises(InputError, match="larger than the corpus"):
        build_trainer(
            recipe_from_dict(
                {
                    "model": SMALL,
                    "data": {"corpus": str(corpus_dir), "holdout": 4},
                    "augment": {"size": 224},
                    "train": {"steps": 2, "batch_size": 4, "pretrained_encoder": False, "out_dir": str(tmp_path / "r")},
                }
            )
        )
