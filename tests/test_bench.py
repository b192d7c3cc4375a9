"""Benchmark: both pipelines see the same data, a tiny run reports its keys, and the fast paths
of the trainer keep the plain loop's numbers (the CUDA graph checked where there is a GPU)."""

import copy
import json
from argparse import Namespace

import pytest
import torch
import torch.nn.functional as F

from mnistkit import bench, data, trainer
from mnistkit.__main__ import main
from mnistkit.config import RunConfig
from mnistkit.errors import ConfigError
from mnistkit.models import build_model

KEYS = {"ratio", "assignment_s", "mnistkit_s", "assignment_acc", "mnistkit_acc", "device", "model", "batch_size"}


def test_assignment_pipeline_and_mnistkit_batches_hold_the_same_images_in_the_same_order():
    theirs = bench.AssignmentPipeline("lenet", 64, 3, "cpu")
    assert sorted(theirs._shuffled(theirs.train_loader.dataset, 64).sampler) == list(range(data.TRAIN_SIZE))
    x, y = data.load(True)
    ours = data.batches(x, y, 64, torch.Generator().manual_seed(3))
    for (a, la), (b, lb), _ in zip(theirs.train_loader, ours, range(3)):
        assert torch.equal(la, lb)
        torch.testing.assert_close(a, b, rtol=0, atol=1e-6)  # ToTensor + Normalize == data.load


def test_after_the_warm_up_both_pipelines_train_on_the_same_first_batch():
    config = RunConfig(model="lenet", batch_size=64, seed=4, device="cpu")
    theirs, ours = bench.AssignmentPipeline("lenet", 64, 4, "cpu", limit=2), bench.MnistkitPipeline(config)
    for p in (theirs, ours):
        p.epoch(copy.deepcopy(p.model), 2)
    _, their_labels = next(iter(theirs.train_loader))
    generator = torch.Generator().set_state(ours.generator.get_state())
    x, y = data.load(True)
    _, our_labels = next(data.batches(x, y, 64, generator))
    assert torch.equal(their_labels, our_labels)


def test_tiny_bench_returns_the_documented_keys_and_writes_its_record(tmp_path):
    out = tmp_path / "bench.json"
    args = Namespace(model="lenet", batch_size=32, epochs=2, device="cpu", seed=0, out=str(out),
                     store=None, quiet=True, limit_batches=3)
    pairs = bench.main(args)
    assert KEYS <= set(pairs)
    assert pairs["device"] == "cpu" and pairs["model"] == "lenet" and pairs["batch_size"] == 32
    assert pairs["ratio"] == pytest.approx(pairs["assignment_s"] / pairs["mnistkit_s"])
    assert 0 <= pairs["assignment_acc"] <= 1 and 0 <= pairs["mnistkit_acc"] <= 1
    record = json.loads(out.read_text())
    assert {"device_name", "torch", "threads", "epochs_timed"} <= set(record)
    assert [len(record["epochs_timed"][p]) for p in ("assignment", "mnistkit")] == [2, 2]
    assert record["epochs_timed"]["mnistkit"][0]["images"] == 3 * 32 * 2  # 3 training + 3 test batches


@pytest.mark.parametrize("args, name", [
    (["--epochs", "0"], "'epochs'"),
    (["--batch-size", "0"], "'batch_size'"),
    (["--device", "tpu"], "'device'"),
])
def test_bad_bench_arguments_are_refused_before_any_work(tmp_path, capsys, args, name):
    out = tmp_path / "bench.json"
    assert main(["bench", *args, "--out", str(out), "--quiet"]) == 2
    assert name in capsys.readouterr().err
    assert not out.exists()
    with pytest.raises(ConfigError):
        bench.run(limit_batches=0, out=None)


def _plain_epoch(model, optimizer, images, labels, batch_size, generator):
    """The textbook loop, per-parameter optimizer and default memory layout: the reference."""
    model.train()
    for x, y in data.batches(images, labels, batch_size, generator):
        optimizer.zero_grad()
        F.cross_entropy(model(x), y).backward()
        optimizer.step()


@pytest.mark.parametrize("model, optimizer, extra, atol", [
    ("lenet", "adam", {}, 1e-5),
    ("lenet", "adamw", dict(weight_decay=0.05), 1e-5),
    ("double_conv_lenet", "sgd", dict(lr=0.05, momentum=0.9), 1e-5),
    # Adam divides by sqrt(v) + eps: for near-zero gradients a rounding difference of the fused
    # kernel (1e-9) grows to ~1e-4 in ten steps
    ("vit", "adam", {}, 1e-3),
])
def test_cpu_path_trains_like_the_plain_loop(model, optimizer, extra, atol):
    """Fused optimizers and channels-last on CPU (where the CUDA graph falls back to the eager
    step) end an epoch with the plain loop's weights, up to float rounding."""
    config = RunConfig(model=model, optimizer=optimizer, batch_size=32, device="cpu", **extra)
    x, y = data.load(True)
    x, y = x[:320], y[:320]
    torch.manual_seed(0)
    fast = build_model(model)
    plain = copy.deepcopy(fast)
    kinds = {"adam": torch.optim.Adam, "adamw": torch.optim.AdamW, "sgd": torch.optim.SGD}
    reference = kinds[optimizer](plain.parameters(), lr=config.lr, weight_decay=config.weight_decay,
                                 foreach=False, **({"momentum": config.momentum} if optimizer == "sgd" else {}))
    opt = trainer.make_optimizer(config, fast.parameters(), "cpu")
    scheduler = torch.optim.lr_scheduler.LambdaLR(opt, trainer.lr_factor(config, 10))
    torch.manual_seed(1)
    result = trainer.train_epoch(fast, opt, scheduler, x, y, config, torch.Generator().manual_seed(2))
    torch.manual_seed(1)
    _plain_epoch(plain, reference, x, y, 32, torch.Generator().manual_seed(2))
    assert 0 < result["train_loss"] < 5
    for a, b in zip(fast.parameters(), plain.parameters()):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=atol)


def test_channels_last_moves_optimizer_state_into_the_parameter_layout():
    """A state saved in the other layout (an older checkpoint) is copied, not misread by the fused step."""
    config = RunConfig(batch_size=32, device="cpu")
    x, y = data.load(True)
    torch.manual_seed(0)
    model = build_model("lenet")
    opt = trainer.make_optimizer(config, model.parameters(), "cpu")
    sums = [torch.zeros(()), torch.zeros((), dtype=torch.long)]
    trainer.train_step(model, opt, x[:32], y[:32], config, sums)  # state in the default layout
    other = copy.deepcopy((model, opt))
    trainer.channels_last(model, opt)
    assert model.conv2.weight.is_contiguous(memory_format=torch.channels_last)
    assert opt.state[model.conv2.weight]["exp_avg"].stride() == model.conv2.weight.stride()
    for m, o in (other, (model, opt)):
        trainer.train_step(m, o, x[32:64], y[32:64], config, sums)
    for a, b in zip(model.parameters(), other[0].parameters()):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-6)


@pytest.fixture
def deterministic():
    """Deterministic CUDA kernels for one test, so that two paths can be compared to the last bits."""
    trainer.set_deterministic(True)
    yield
    trainer.set_deterministic(False)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("model", ["lenet", "vit"])
def test_cuda_graph_step_gives_the_eager_loss_on_the_same_batches(model, deterministic):
    """Replays of the captured step (with a cosine schedule, then a partial batch run eagerly)
    give the eager step's loss, sums and weights."""
    config = RunConfig(model=model, batch_size=64, device="cuda", schedule="cosine", epochs=1, warmup_epochs=0.5)
    x, y = data.load(True, "cuda")
    x, y = x[: 64 * 9 + 20], y[: 64 * 9 + 20]  # 9 full batches, then a partial one
    torch.manual_seed(0)
    graphed = build_model(model).cuda()
    eager = copy.deepcopy(graphed)
    runs = []
    for net in (graphed, eager):
        opt = trainer.make_optimizer(config, net.parameters(), "cuda")
        runs.append((net, opt, torch.optim.lr_scheduler.LambdaLR(opt, trainer.lr_factor(config, 10)),
                     [torch.zeros((), device="cuda"), torch.zeros((), device="cuda", dtype=torch.long)]))
    step = trainer.CudaGraphStep(runs[0][0], runs[0][1], config, runs[0][3])
    for xb, yb in data.batches(x, y, 64, torch.Generator().manual_seed(0)):
        torch.manual_seed(1)  # the same dropout masks for both
        a = step(xb, yb).item()
        torch.manual_seed(1)
        b = trainer.train_step(runs[1][0], runs[1][1], xb, yb, config, runs[1][3]).item()
        assert a == pytest.approx(b, rel=1e-5, abs=1e-6)
        runs[0][2].step()
        runs[1][2].step()
    assert step.graph is not None
    assert runs[0][1].param_groups[0]["lr"] == runs[1][1].param_groups[0]["lr"]  # a float again
    torch.testing.assert_close(runs[0][3][0], runs[1][3][0], rtol=1e-5, atol=1e-5)
    assert torch.equal(runs[0][3][1], runs[1][3][1])
    for p, q in zip(graphed.parameters(), eager.parameters()):
        torch.testing.assert_close(p, q, rtol=1e-4, atol=1e-5)
