"""The SIFT bag-of-visual-words baseline on real MNIST, with small subsets and a cheap grid."""

import json
from pathlib import Path

import numpy as np
import pytest

from mnistkit import bovw, data, executor
from mnistkit.bovw import BovwConfig, BovwResult
from mnistkit.errors import ConfigError
from mnistkit.store import Store

# A coarse grid on the unscaled digit: about 0.1 ms per image, so the 10,000 test images are quick.
FAST = dict(upscale=28, step=4, patch=2.0, words=64, kmeans_sample=5_000, jobs=1)


@pytest.fixture(scope="module")
def digits():
    images, labels = data.load("mnist", True)
    return bovw.pixels(images[:300]), labels[:300].numpy()


def test_pixels_are_the_raw_uint8_digits(digits):
    images, _ = digits
    assert images.dtype == np.uint8 and images.shape == (300, 28, 28)
    assert images.min() == 0 and images.max() == 255


def test_descriptors_are_rootsift_on_the_dense_grid(digits):
    config = BovwConfig()
    desc = bovw.describe(digits[0][:3], config)
    side = np.unique(bovw.grid(config)[:, 0])  # every step px from step / 2, as far as the image reaches
    assert side[0] == config.step / 2 and np.all(np.diff(side) == config.step)
    assert side[-1] < config.upscale <= side[-1] + config.step and len(bovw.grid(config)) == len(side) ** 2
    assert desc.shape == (3, len(bovw.grid(config)), 128) and desc.dtype == np.float32
    assert desc.min() >= 0
    inked = desc.sum(axis=2) > 0
    # RootSIFT: the square root of an L1-normalized histogram has unit L2 norm
    np.testing.assert_allclose(np.linalg.norm(desc, axis=2)[inked], 1.0, atol=1e-3)


def test_vocabulary_is_deterministic_for_a_seed(digits):
    config = BovwConfig(**FAST)
    first = bovw.vocabulary(digits[0], config, progress=False)
    second = bovw.vocabulary(digits[0], config, progress=False)
    assert first.shape == (config.words, 128)
    np.testing.assert_array_equal(first, second)
    other = bovw.vocabulary(digits[0], BovwConfig(**FAST, seed=1), progress=False)
    assert not np.array_equal(first, other)


@pytest.mark.parametrize("levels", [1, 2, 3])
def test_histograms_are_non_negative_with_unit_norm(digits, levels):
    config = BovwConfig(**{**FAST, "levels": levels})
    centers = bovw.vocabulary(digits[0], config, progress=False)
    hist = bovw.encode(digits[0][:40], centers, config, progress=False)
    assert hist.shape == (40, bovw.feature_dim(config)) == (40, config.words * sum(4**i for i in range(levels)))
    assert hist.min() >= 0
    np.testing.assert_allclose(np.sqrt(hist.multiply(hist).sum(axis=1)).A1, 1.0, rtol=1e-5)


@pytest.mark.slow
def test_parallel_encoding_matches_serial(digits):
    config = BovwConfig(**FAST)
    centers = bovw.vocabulary(digits[0], config, progress=False)
    images = np.concatenate([digits[0]] * 4)  # 1,200 images: three chunks
    serial = bovw.encode(images, centers, config, progress=False)
    parallel = bovw.encode(images, centers, BovwConfig(**{**FAST, "jobs": 2}), progress=False)
    assert (serial != parallel).nnz == 0


@pytest.mark.slow
def test_run_is_accurate_reproducible_and_reused_from_the_store(tmp_path):
    config = BovwConfig(**FAST, subset=2000)
    first = executor.make(Store(tmp_path / "a"), config, progress=False)
    assert isinstance(first, BovwResult) and not first.reused
    assert first.test_acc > 0.6 and first.train_size == 2000 and len(first.per_class_acc) == 10
    assert first.feature_dim == bovw.feature_dim(config)
    folder = tmp_path / "a" / f"bovw-{config.key()}"
    assert json.loads((folder / "result.json").read_text())["test_acc"] == first.test_acc

    second = executor.make(Store(tmp_path / "a"), config, progress=False)
    assert second.reused
    assert {**vars(second), "reused": False} == vars(first)

    again = executor.make(Store(tmp_path / "b"), BovwConfig.from_dict(config.to_dict()), progress=False)
    assert not again.reused
    assert again.test_acc == first.test_acc and again.per_class_acc == first.per_class_acc


def test_key_is_stable_and_follows_every_field():
    assert BovwConfig().key() == BovwConfig.from_dict(BovwConfig().to_dict()).key()
    assert len(BovwConfig().key()) == 12
    assert BovwConfig(words=256).key() != BovwConfig().key()
    assert BovwConfig(jobs=1).key() != BovwConfig().key()
    assert BovwConfig(patch=4, C=1).key() == BovwConfig(patch=4.0, C=1.0).key()


@pytest.mark.parametrize("bad", [
    {"subset": 15},
    {"upscale": 20},
    {"step": 0},
    {"patch": -1.0},
    {"words": 1},
    {"words": 512, "kmeans_sample": 100},
    {"subset": 10, "step": 28, "words": 64},
    {"levels": 0},
    {"power": 2},
    {"feature_map": "poly"},
    {"components": 100},
    {"C": 0},
    {"seed": -1},
    {"jobs": 0},
    {"jobs": 1.5},
    {"vocabulary": 512},
])
def test_bad_parameters_raise_config_error_and_write_nothing(tmp_path, bad):
    with pytest.raises(ConfigError):
        executor.make(Store(tmp_path / "store"), BovwConfig.from_dict(bad), progress=False)
    assert not (tmp_path / "store").exists()



def test_the_defaults_are_the_full_searchs_choice():
    """bovw.py's defaults are the baseline that the committed full report's search chose, not its input."""
    summary = json.loads((Path(__file__).resolve().parents[1] / "figures" / "summary.json").read_text())
    assert summary["profile"] == "full" and summary["q3"]["search"]["scored_on"] == "validation"
    chosen = summary["q3"]["search"]["best_setting"]
    defaults = BovwConfig()
    assert {name: getattr(defaults, name) for name in chosen} == chosen
