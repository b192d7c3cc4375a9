"""Dense-SIFT bag of visual words + linear SVM: the classical baseline for MNIST.

Each 28x28 digit is resized to 56x56 and OpenCV SIFT describes a dense grid of 19x19 keypoints
(every 3 px, keypoint size 4: a 24 px window), RootSIFT-normalized. MiniBatchKMeans on 100,000
sampled training descriptors gives 2,048 visual words. A digit becomes the word counts of a
1x1 + 2x2 spatial pyramid (10,240 sparse features), square-rooted (Hellinger) and L2-normalized,
and a one-vs-rest ``LinearSVC`` (C=1) classifies them. A ``BovwConfig`` is an entry of the run
store (``store.Entry``): computed once, then read.

The defaults are the result of the report's search (``q3.search`` in ``parameters/full.yaml``:
24 settings drawn at random, each trained on 10,000 balanced images and scored on the
validation images, ``scored_on='validation'``); the best one, trained on the whole training set
once per seed, is the baseline of question 3. OpenCV's descriptor window is 6 x patch pixels
wide. k-means runs on one thread: on two, while another process holds a core, OpenMP's busy
waiting made it up to 25x slower.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import time
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from joblib import Parallel, delayed
from scipy import sparse
from threadpoolctl import threadpool_limits

from . import numerics
from .errors import ConfigError, check_number, from_mapping
from .progress import bar as progress_bar

# mnistkit.data imports torch (~0.9 GB resident); it is imported inside the functions that need it,
# so that the worker processes, which import this module, stay small.

# Bump when a change to this module changes the numbers: old entries are then not reused. 2: on an
# AVX-512 CPU, OpenCV's AVX-512 kernels are really off (numerics.avx512_off); entries made there before
# were keyed as if they were.
VERSION = 2
FEATURE_MAPS = ("linear", "chi2")
SCORED_ON = ("test", "validation")
CHUNK = 500  # images per parallel task; one task's descriptors take 500 x K x 512 bytes
KMEANS_EPOCHS = 10  # MiniBatchKMeans passes over the sample at most (it stops after ~6)


@dataclass(frozen=True)
class BovwConfig:
    """One BoVW run, completely: same config -> same store folder -> same numbers."""

    dataset: str = "mnist"  # a name of data.DATASETS
    subset: int | None = None  # None: all 60,000 training images; else a balanced subset
    subset_seed: int = 0
    upscale: int = 56  # the 28x28 digit is resized to upscale x upscale before SIFT
    step: int = 3  # spacing of the dense keypoint grid, in upscaled pixels
    patch: float = 4.0  # cv2.KeyPoint size; OpenCV's descriptor window is 6 x patch pixels wide
    words: int = 2048  # vocabulary size
    kmeans_sample: int = 100_000  # training descriptors k-means is fitted on
    levels: int = 2  # spatial pyramid: 1 -> 1x1; 2 -> 1x1 + 2x2; 3 -> 1x1 + 2x2 + 4x4
    power: float = 0.5  # counts ** power before L2 normalization (0.5: Hellinger kernel)
    feature_map: str = "linear"  # 'chi2': AdditiveChi2Sampler before the linear SVM
    C: float = 1.0
    seed: int = 0
    jobs: int = 2  # worker processes for descriptors and histograms; all else runs on one thread
    validation: int = 0  # training images held out (data.validation_indices), as the CNN runs hold them out
    scored_on: str = "test"  # the images the result's accuracies are measured on: test, or the held-out validation ones

    def __post_init__(self):
        from .data import check_subset, check_validation, dataset, train_images

        dataset(self.dataset)
        check_validation(self.validation)
        check_subset(self.dataset, self.subset, self.validation)
        check_number("subset_seed", self.subset_seed, 0, integer=True)
        check_number("upscale", self.upscale, 28, 224, integer=True)
        check_number("step", self.step, 1, self.upscale, integer=True)
        check_number("patch", self.patch, 1, self.upscale, integer=False)
        check_number("words", self.words, 2, 8192, integer=True)
        check_number("kmeans_sample", self.kmeans_sample, self.words, integer=True)
        check_number("levels", self.levels, 1, 4, integer=True)
        check_number("power", self.power, 0.05, 1, integer=False)
        if self.feature_map not in FEATURE_MAPS:
            raise ConfigError("feature_map", self.feature_map, f"must be one of {list(FEATURE_MAPS)}")
        check_number("C", self.C, 1e-6, 1e6, integer=False)
        if self.scored_on not in SCORED_ON:
            raise ConfigError("scored_on", self.scored_on, f"must be one of {list(SCORED_ON)}")
        if self.scored_on == "validation" and not self.validation:
            raise ConfigError("scored_on", self.scored_on, "needs validation images held out (validation > 0)")
        check_number("seed", self.seed, 0, integer=True)
        check_number("jobs", self.jobs, 1, 64, integer=True)
        descriptors = train_images(self.subset, self.validation) * len(grid(self))
        if self.words > descriptors:
            raise ConfigError("words", self.words, f"must be at most the {descriptors} training descriptors")
        for name in ("patch", "power", "C"):  # 4 and 4.0 are one config, with one key
            object.__setattr__(self, name, float(getattr(self, name)))

    @classmethod
    def from_dict(cls, values: dict) -> "BovwConfig":
        """Build a config from a mapping; an unknown key raises ``ConfigError``."""
        return from_mapping(cls, values, "BoVW parameter")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def key(self) -> str:
        """Stable 12-hex hash of every field, ``VERSION`` and the kernels NumPy, its BLAS and OpenCV
        compute with (``numerics.baseline_fingerprint``); the store folder is ``bovw-<key>``. MNIST's name is
        left out (``data.keyed``), as in ``RunConfig.key``."""
        from .data import keyed

        values = {**keyed(self.to_dict()), "version": VERSION, "numerics": numerics.baseline_fingerprint()}
        blob = json.dumps(values, sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()[:12]

    # The run store's Entry protocol: the baseline is stored, locked and reused like a training run.

    def folder_name(self) -> str:
        return f"bovw-{self.key()}"

    def compute(self, folder: Path, progress: bool) -> dict[str, bytes]:
        return _files(_compute(self, progress))

    def read(self, folder: Path, files: dict[str, bytes]) -> "BovwResult":
        return BovwResult(**json.loads(files["result.json"]), reused=True)


@dataclass
class BovwResult:
    """What one BoVW run measured; ``reused`` says whether it was read from the store."""

    test_acc: float  # on the images of config['scored_on']: the test set, or the validation images
    per_class_acc: list[float]  # accuracy on each digit 0..9 of those images
    train_seconds: float  # vocabulary + training descriptors and histograms + classifier fit
    test_seconds: float  # descriptors, histograms and prediction of every scored image (config['scored_on'])
    inference_ms_per_image: float  # test_seconds per test image, from raw pixels to label
    feature_dim: int
    train_size: int
    seconds: float  # the whole computation, data loading included
    stages: dict[str, float]  # seconds of load, vocabulary, encode_train, fit, encode_test, predict
    config: dict
    numerics: dict = dataclasses.field(default_factory=dict)  # numerics.baseline_fingerprint() of the run
    predictions: list[int] = dataclasses.field(default_factory=list)  # the predicted digit of each test image
    reused: bool = False


def pixels(images) -> np.ndarray:
    """uint8 ``[N, 28, 28]`` raw pixels of the normalized ``[N, 1, 28, 28]`` tensors of ``data.load``."""
    from .data import MEAN, STD

    return (images[:, 0].cpu() * STD + MEAN).mul_(255).round_().clamp_(0, 255).byte().numpy()


def grid(config: BovwConfig) -> np.ndarray:
    """``[K, 2]`` float32 (x, y) centres of the dense keypoints on the upscaled digit."""
    side = np.arange(config.step / 2, config.upscale, config.step, dtype=np.float32)
    xs, ys = np.meshgrid(side, side)
    return np.stack([xs.ravel(), ys.ravel()], axis=1)


def describe(images: np.ndarray, config: BovwConfig) -> np.ndarray:
    """RootSIFT descriptors ``[N, K, 128]`` float32 of uint8 digits ``[N, 28, 28]`` on the dense grid.

    RootSIFT (L1 normalization, then square root) makes the Euclidean distance that k-means
    uses behave like the Hellinger distance between gradient histograms.
    """
    threads = cv2.getNumThreads()
    cv2.setNumThreads(1)  # the parallelism is across images, in worker processes
    try:
        sift = cv2.SIFT_create()
        points = [cv2.KeyPoint(float(x), float(y), float(config.patch), 0.0) for x, y in grid(config)]
        out = np.empty((len(images), len(points), 128), np.float32)
        size = (config.upscale, config.upscale)
        for i, image in enumerate(images):
            big = cv2.resize(image, size, interpolation=cv2.INTER_LINEAR) if size != image.shape else image
            kept, desc = sift.compute(big, points)
            if len(kept) != len(points):  # rows would no longer match the grid's cells
                raise RuntimeError(f"SIFT kept {len(kept)} of {len(points)} keypoints")
            out[i] = desc
    finally:
        cv2.setNumThreads(threads)
    out /= out.sum(axis=2, keepdims=True) + 1e-7
    return np.sqrt(out, out=out)


def feature_dim(config: BovwConfig) -> int:
    """Length of an encoded image: ``words`` per cell, over all pyramid levels (1 + 4 + 16 cells)."""
    return config.words * sum(4**level for level in range(config.levels))


def cost(config: BovwConfig) -> int:
    """Keypoint-word products per image (keypoints x words): what encoding an image costs, the
    search's tie-break between equally accurate settings."""
    return len(grid(config)) * config.words


def learned_parameters(config: BovwConfig) -> int:
    """The values fitted to the data: the vocabulary (``words`` x 128) and the SVM's weights and biases."""
    return config.words * 128 + feature_dim(config) * 10 + 10


def _cells(config: BovwConfig) -> np.ndarray:
    """``[K, levels]``: for each keypoint, the index of its cell at each pyramid level."""
    xy = grid(config)
    columns, offset = [], 0
    for level in range(config.levels):
        n = 2**level
        col, row = (np.minimum(xy * n / config.upscale, n - 1).astype(int)).T
        columns.append(offset + row * n + col)
        offset += n * n
    return np.stack(columns, axis=1)


def histograms(desc: np.ndarray, centers: np.ndarray, config: BovwConfig) -> sparse.csr_matrix:
    """``[N, feature_dim]`` sparse float32 pyramid histograms of ``[N, K, 128]`` descriptors.

    Each descriptor votes for its nearest word in every pyramid level's cell that holds its
    keypoint; the counts are raised to ``power``, then each row is L2-normalized.
    """
    n, k, _ = desc.shape
    flat = desc.reshape(-1, 128)
    half_norms = 0.5 * (centers**2).sum(axis=1)
    words = np.empty(len(flat), np.int64)
    for start in range(0, len(flat), 20_000):  # bounds the distance matrix at 20,000 x words
        part = flat[start : start + 20_000]
        words[start : start + 20_000] = np.argmax(part @ centers.T - half_norms, axis=1)
    bins = _cells(config)[None] * config.words + words.reshape(n, k, 1)
    rows = np.repeat(np.arange(n), k * config.levels)
    hist = sparse.csr_matrix((np.ones(len(rows), np.float32), (rows, bins.ravel())),
                             shape=(n, feature_dim(config)))
    hist.sum_duplicates()
    hist.data **= config.power
    norms = np.sqrt(np.add.reduceat(hist.data**2, hist.indptr[:-1]))
    hist.data /= np.repeat(norms, np.diff(hist.indptr))
    return hist


def _encode_chunk(images, centers, config):
    with threadpool_limits(1):  # OpenBLAS's bits depend on its thread count: one, whatever the worker's
        return histograms(describe(images, config), centers, config)


def _parallel(fn, images, config, progress, desc, *args):
    """``fn(chunk, *args, config)`` for every CHUNK images, in ``config.jobs`` processes, in order."""
    chunks = [images[start : start + CHUNK] for start in range(0, len(images), CHUNK)]
    parts = Parallel(n_jobs=config.jobs, return_as="generator")(
        delayed(fn)(chunk, *args, config) for chunk in chunks
    )
    return list(progress_bar(parts, total=len(chunks), desc=desc, unit="chunk", disable=not progress))


def encode(images: np.ndarray, centers: np.ndarray, config: BovwConfig, progress=True, desc="encode"):
    """``[N, feature_dim]`` sparse histograms of uint8 digits, chunk by chunk over ``config.jobs`` processes.

    Descriptors exist only one chunk per worker at a time: for all 60,000 training images at
    once they would take 6 GB.
    """
    return sparse.vstack(_parallel(_encode_chunk, images, config, progress, desc, centers), format="csr")


def vocabulary(images: np.ndarray, config: BovwConfig, progress=True) -> np.ndarray:
    """``[words, 128]`` float32 k-means centres of ``kmeans_sample`` descriptors drawn with ``seed``.

    The descriptors come from a seeded sample of twice as many images as needed, so the
    vocabulary sees many digits rather than every patch of a few.
    """
    from sklearn.cluster import MiniBatchKMeans

    rng = np.random.default_rng(config.seed)
    n_images = min(len(images), 2 * math.ceil(config.kmeans_sample / len(grid(config))))
    chosen = images[np.sort(rng.choice(len(images), n_images, replace=False))]
    desc = np.concatenate(_parallel(describe, chosen, config, progress, "vocabulary")).reshape(-1, 128)
    sample = desc[np.sort(rng.choice(len(desc), min(config.kmeans_sample, len(desc)), replace=False))]
    kmeans = MiniBatchKMeans(config.words, batch_size=4096, n_init=1, max_iter=KMEANS_EPOCHS,
                             random_state=config.seed)
    with threadpool_limits(1):
        kmeans.fit(sample)
    return kmeans.cluster_centers_.astype(np.float32)


def classifier(config: BovwConfig):
    """The unfitted sklearn pipeline for the histograms: ``LinearSVC``, after the chi2 map if asked."""
    from sklearn.kernel_approximation import AdditiveChi2Sampler
    from sklearn.pipeline import make_pipeline
    from sklearn.svm import LinearSVC

    svm = LinearSVC(C=config.C, dual=True, max_iter=5000, random_state=config.seed)
    if config.feature_map == "chi2":
        return make_pipeline(AdditiveChi2Sampler(sample_steps=2), svm)
    return make_pipeline(svm)


def _files(result: BovwResult) -> dict[str, bytes]:
    payload = {k: v for k, v in dataclasses.asdict(result).items() if k != "reused"}
    per_class = "digit,accuracy\n" + "".join(f"{c},{a!r}\n" for c, a in enumerate(result.per_class_acc))
    return {
        "result.json": json.dumps(payload, indent=2, sort_keys=True).encode(),
        "per_class.csv": per_class.encode(),
    }


def _compute(config: BovwConfig, progress: bool) -> BovwResult:
    from . import data

    stages = {}

    def timed(name, fn, *args):
        start = time.perf_counter()
        out = fn(*args)
        stages[name] = time.perf_counter() - start
        return out

    begin = time.perf_counter()
    with threadpool_limits(1):
        images, labels = data.train_split(config.dataset, config.subset, config.subset_seed,
                                          validation=config.validation)
        train_x, train_y = pixels(images), labels.numpy()
        test_images, test_labels = (data.validation_split(config.dataset, config.validation)
                                    if config.scored_on == "validation" else data.load(config.dataset, False))
        test_x, test_y = pixels(test_images), test_labels.numpy()
        del images, test_images
        stages["load"] = time.perf_counter() - begin

        centers = timed("vocabulary", vocabulary, train_x, config, progress)
        train_h = timed("encode_train", encode, train_x, centers, config, progress, "encode train")
        model = classifier(config)
        timed("fit", model.fit, train_h, train_y)
        del train_h
        test_h = timed("encode_test", encode, test_x, centers, config, progress, "encode test")
        predicted = timed("predict", model.predict, test_h)
    test_seconds = stages["encode_test"] + stages["predict"]
    return BovwResult(
        test_acc=float((predicted == test_y).mean()),
        per_class_acc=[float((predicted[test_y == c] == c).mean()) for c in range(10)],
        train_seconds=stages["vocabulary"] + stages["encode_train"] + stages["fit"],
        test_seconds=test_seconds,
        inference_ms_per_image=1000 * test_seconds / len(test_y),
        feature_dim=feature_dim(config),
        train_size=len(train_y),
        seconds=time.perf_counter() - begin,
        stages=stages,
        config=config.to_dict(),
        numerics=numerics.baseline_fingerprint(),
        predictions=[int(p) for p in predicted],
    )
