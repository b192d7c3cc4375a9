"""Benchmark: both pipelines see the same data, a tiny run reports its keys, and the fast paths
of the trainer keep the plain loop's numbers (the CUDA graph checked where there is a GPU)."""

import copy
import json
import platform
from argparse import Namespace

import pytest
import torch
import torch.nn.functional as F

from mnistkit import bench, data, numerics, pipelines, trainer
from mnistkit.__main__ import main
from mnistkit.config import RunConfig
from mnistkit.errors import ConfigError
from mnistkit.models import build_model

KEYS = {"ratio", "assignment_s", "mnistkit_s", "assignment_acc", "mnistkit_acc", "device", "model", "batch_size",
        "pinned_over_native", "mnistkit_native_s", "assignment_images_per_s", "mnistkit_images_per_s",
        "mnistkit_native_images_per_s", "flops_per_image", "peak_gflops", "peak_gflops_pinned", "efficiency",
        "efficiency_native", "efficiency_assignment", "threads", "ceiling_gflops", "efficiency_ceiling"}


def _conv(c_in, c_out, k, out_hw):
    return 2 * c_in * k * k * c_out * out_hw * out_hw  # 2 FLOPs a multiply-add


def _linear(n_in, n_out, rows=1):
    return 2 * rows * n_in * n_out


# LeNet by hand: conv 1->6 5x5 (28->24), pool, conv 6->16 5x5 (12->8), pool, linear 256->120->84->10.
# Training: the forward pass, then in the backward pass the weight gradient of every layer and the
# input gradient of all but the first (the image needs none): about 3x the forward pass.
_LENET_FIRST = _conv(1, 6, 5, 24)
_LENET_REST = _conv(6, 16, 5, 8) + _linear(256, 120) + _linear(120, 84) + _linear(84, 10)
LENET_TRAINING_FLOPS = (_LENET_FIRST + _LENET_REST) + _LENET_FIRST + 2 * _LENET_REST
# The ViT by hand: 16 patches of 49 pixels -> 128, a CLS token (17 tokens), 2 layers of (qkv projection,
# q k^T and weights @ v over 8 heads of 16, output projection, 128 -> 256 -> 128), then 128 -> 256 -> 10 on the CLS.
_VIT_FIRST = _linear(49, 128, rows=16)
_VIT_LAYER = (_linear(128, 3 * 128, rows=17) + 2 * 8 * 2 * 17 * 17 * 16 + _linear(128, 128, rows=17)
              + _linear(128, 256, rows=17) + _linear(256, 128, rows=17))
_VIT_REST = 2 * _VIT_LAYER + _linear(128, 256) + _linear(256, 10)
VIT_TRAINING_FLOPS = (_VIT_FIRST + _VIT_REST) + _VIT_FIRST + 2 * _VIT_REST


@pytest.mark.slow
def test_assignment_pipeline_and_mnistkit_batches_hold_the_same_images_in_the_same_order():
    theirs = pipelines.AssignmentPipeline("lenet", 64, 3, "cpu")
    assert sorted(theirs._shuffled(theirs.train_loader.dataset, 64).sampler) == list(range(data.TRAIN_SIZE))
    x, y = data.load("mnist", True)
    ours = data.batches(x, y, 64, torch.Generator().manual_seed(3))
    for (a, la), (b, lb), _ in zip(theirs.train_loader, ours, range(3)):
        assert torch.equal(la, lb)
        torch.testing.assert_close(a, b, rtol=0, atol=1e-6)  # ToTensor + Normalize == data.load


@pytest.mark.slow
def test_after_the_warm_up_both_pipelines_train_on_the_same_first_batch():
    config = RunConfig(model="lenet", batch_size=64, seed=4, device="cpu")
    theirs, ours = pipelines.AssignmentPipeline("lenet", 64, 4, "cpu", limit=2), pipelines.MnistkitPipeline(config)
    for p in (theirs, ours):
        p.epoch(copy.deepcopy(p.model), 2)
    _, their_labels = next(iter(theirs.train_loader))
    generator = torch.Generator().set_state(ours.generator.get_state())
    x, y = data.load("mnist", True)
    _, our_labels = next(data.batches(x, y, 64, generator))
    assert torch.equal(their_labels, our_labels)


def test_lenet_training_flops_are_the_hand_count_per_image_whatever_the_batch():
    x, y = data.load("mnist", True)
    torch.manual_seed(0)
    model = build_model("lenet")
    state = torch.get_rng_state()
    for n in (8, 5):
        flops, per_op = pipelines.training_flops(model, x[:n], y[:n])
        assert flops == LENET_TRAINING_FLOPS == 1_517_040
        assert set(per_op) == {"aten.convolution", "aten.convolution_backward", "aten.addmm", "aten.mm"}
    assert all(p.grad is None for p in model.parameters())  # counted on a copy
    assert torch.equal(torch.get_rng_state(), state)


def test_both_vits_count_the_hand_count_of_training_flops():
    x, y = data.load("mnist", True)
    torch.manual_seed(0)
    for model in (build_model("vit"), pipelines.AssignmentViT()):
        assert pipelines.training_flops(model, x[:4], y[:4])[0] == VIT_TRAINING_FLOPS == 28_239_872


@pytest.mark.slow
def test_tiny_bench_returns_the_documented_keys_consistent_with_its_record(tmp_path):
    out = tmp_path / "bench.json"
    args = Namespace(model="lenet", batch_size=32, epochs=2, device="cpu", seed=0, out=str(out),
                     store=None, quiet=True, limit_batches=3, threads=None, peak_size=256)
    pairs = bench.main(args)
    assert KEYS <= set(pairs)
    assert pairs["device"] == "cpu" and pairs["model"] == "lenet" and pairs["batch_size"] == 32
    assert pairs["threads"] == 1
    assert pairs["ratio"] == pytest.approx(pairs["assignment_s"] / pairs["mnistkit_s"])
    assert pairs["pinned_over_native"] == pytest.approx(pairs["mnistkit_s"] / pairs["mnistkit_native_s"])
    assert pairs["flops_per_image"] == LENET_TRAINING_FLOPS
    record = json.loads(out.read_text())
    assert {"device_name", "torch", "threads", "epochs_timed", "kernels", "peak_gflops"} <= set(record)
    timed = record["epochs_timed"]
    assert [len(timed[p]) for p in ("assignment", "mnistkit", "mnistkit_native")] == [2, 2, 2]
    for side, name in (("assignment", "efficiency_assignment"), ("mnistkit", "efficiency"),
                       ("mnistkit_native", "efficiency_native")):
        rows = timed[side]
        # 3 training + 3 test batches an epoch
        assert [(r["images"], r["train_images"]) for r in rows] == [(3 * 32 * 2, 3 * 32)] * 2
        assert all(0 < r["train_seconds"] < r["seconds"] for r in rows)
        assert pairs[f"{side}_s"] == pytest.approx(sum(r["seconds"] for r in rows) / 2)
        images_per_s = 2 * 3 * 32 / sum(r["train_seconds"] for r in rows)  # the training pass only
        assert pairs[f"{side}_images_per_s"] == pytest.approx(images_per_s)
        assert 0 <= pairs[f"{side}_acc"] <= 1 and pairs[f"{side}_peak_mb"] > 0
        assert pairs[name] == pytest.approx(images_per_s * LENET_TRAINING_FLOPS / (pairs["peak_gflops"] * 1e9))
    measured = record["peak_gflops"]["measured"]
    assert [len(measured[s]) for s in ("assignment", "mnistkit", "mnistkit_native")] == [2, 2, 2]  # before, after
    assert pairs["peak_gflops"] == max(measured["assignment"] + measured["mnistkit_native"]) > 0
    assert pairs["peak_gflops_pinned"] == max(measured["mnistkit"]) > 0
    if platform.machine().lower() in ("x86_64", "amd64"):  # the pinned route's ceiling, from the pinned worker
        ceilings = record["peak_gflops"]["ceiling_measured"]
        assert len(ceilings) == 2 and pairs["ceiling_gflops"] == max(ceilings) > 0
        images_per_s = pairs["mnistkit_images_per_s"]
        assert pairs["efficiency_ceiling"] == pytest.approx(
            images_per_s * LENET_TRAINING_FLOPS / (pairs["ceiling_gflops"] * 1e9))
    kernels = record["kernels"]
    assert kernels["assignment"] == kernels["mnistkit_native"]
    if platform.machine().lower() in ("x86_64", "amd64"):  # each worker on its own kernels, by its own report
        assert kernels["mnistkit"]["cpu_capability"] == "AVX2" and kernels["mnistkit"]["mkl_cbwr"] == "COMPATIBLE"
        assert kernels["mnistkit_native"]["mkl_cbwr"] == kernels["mnistkit_native"]["onednn_isa"] == "native"


def test_a_worker_environment_has_the_pins_set_by_the_worker_or_turned_off(monkeypatch):
    monkeypatch.setenv("MNISTKIT_KERNELS", "native")
    monkeypatch.setenv("MKL_CBWR", "COMPATIBLE")
    pinned, native = bench.side_env("pinned"), bench.side_env("native")
    assert "MNISTKIT_KERNELS" not in pinned and "MKL_CBWR" not in pinned  # set again when the worker imports mnistkit
    assert native["MNISTKIT_KERNELS"] == "native" and not set(native) & {*numerics.PINS, *numerics.AVX512_PINS}


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
@pytest.mark.slow
def test_cpu_path_trains_like_the_plain_loop(model, optimizer, extra, atol):
    """Fused optimizers and channels-last on CPU (where the CUDA graph falls back to the eager
    step) end an epoch with the plain loop's weights, up to float rounding."""
    config = RunConfig(model=model, optimizer=optimizer, batch_size=32, device="cpu", **extra)
    x, y = data.load("mnist", True)
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
    x, y = data.load("mnist", True)
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
    x, y = data.load("mnist", True, "cuda")
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
