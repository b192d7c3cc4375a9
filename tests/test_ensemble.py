"""Seeds trained together as one vmapped ensemble match the same seeds trained one by one."""

import pytest
import torch

from mnistkit import data, ensemble, executor
from mnistkit.config import RunConfig
from mnistkit.runs import Training
from mnistkit.store import Store
from mnistkit.trainer import METRICS, fit

pytestmark = pytest.mark.slow  # every test here trains


@pytest.fixture(autouse=True)
def small_test_set(monkeypatch):
    """The first 1,000 test images stand in for the 10,000 evaluated after every epoch."""
    load = data.load

    def first_thousand(name, train, device="cpu", root=None):
        x, y = load(name, train, device, root)
        return (x, y) if train else (x[:1000], y[:1000])

    monkeypatch.setattr(data, "load", first_thousand)


def _assert_matches_single_runs(configs, rtol=1e-4, atol=1e-5):
    """Histories and test-set outputs equal to float tolerance. (Parameters are not compared: the
    gradient of an attention key bias is zero up to rounding, and Adam turns that noise into steps.)"""
    together = ensemble.fit_ensemble(configs)
    x = data.load("mnist", False)[0][:200]
    for config, (model, history) in zip(configs, together):
        single_model, single = fit(config, progress=False)
        got, want = history.frame()[list(METRICS)], single.frame()[list(METRICS)]
        assert torch.allclose(torch.tensor(got.values), torch.tensor(want.values), rtol=rtol, atol=atol), config.seed
        with torch.no_grad():
            assert torch.allclose(model.eval()(x), single_model.eval()(x), rtol=rtol, atol=atol), config.seed


def test_lenet_ensemble_matches_single_runs_with_own_subsets_orders_and_shifts():
    base = RunConfig(subset=300, epochs=1, batch_size=32, device="cpu", augment="shift", schedule="cosine",
                     warmup_epochs=0.5)
    _assert_matches_single_runs([base.replace(seed=s, subset_seed=s) for s in (0, 1, 2)])


def test_sgd_momentum_ensemble_matches_single_runs():
    base = RunConfig(subset=100, epochs=2, batch_size=50, device="cpu", optimizer="sgd", lr=0.05, momentum=0.9)
    _assert_matches_single_runs([base.replace(seed=s) for s in (3, 4)])


def test_vit_without_dropout_ensemble_matches_single_runs():
    base = RunConfig(model="vit", model_kw={"dropout": 0.0, "dim": 32, "mlp_dim": 64, "heads": 4},
                     subset=100, epochs=1, batch_size=50, device="cpu", optimizer="adamw", weight_decay=0.05)
    _assert_matches_single_runs([base.replace(seed=s) for s in (0, 1)])


def test_a_model_with_batch_statistics_is_never_ensembled(bn_lenet):
    a = RunConfig(model=bn_lenet, subset=100, epochs=1, device="cpu")
    with pytest.raises(ValueError, match="bn_lenet keeps batch statistics"):
        ensemble.fit_ensemble([a, a.replace(seed=1)])


def test_groups_are_the_seeds_of_one_configuration():
    a = RunConfig(subset=100, epochs=1, device="cpu")
    runs = [a.replace(seed=0), a.replace(seed=1, subset_seed=1), a.replace(lr=0.01), a.replace(seed=2)]
    assert [[c.seed for c in g] for g in executor.groups(runs)] == [[0, 1, 2], [42]]
    with pytest.raises(ValueError):
        ensemble.fit_ensemble([a, a.replace(lr=0.01)])
    # Runs that do not ask to be ensemble members (every run on a CPU) stay single.
    assert all(len(task) == 1 for task in executor._tasks(runs))


def test_ensemble_task_writes_one_entry_per_seed_and_skips_stored_ones(store_root):
    base = RunConfig(subset=100, epochs=1, device="cpu")
    configs = [base.replace(seed=s) for s in (0, 1, 2)]
    store = Store(store_root)
    first = executor.make(store, configs[0], progress=False)
    ident = executor.store_id(store_root)

    class FakeWorker:  # the task's progress reports go nowhere outside a Dask worker
        def log_event(self, topic, msg):
            pass

    import distributed

    original = distributed.get_worker
    distributed.get_worker = lambda: FakeWorker()
    try:
        result = executor.ensemble_task(str(store_root), ident, configs, [c.key() for c in configs])
    finally:
        distributed.get_worker = original
    assert result["trained"] == [False, True, True]
    assert store.load(Training(configs[0])).history.equals(first.history)
    for config in configs[1:]:
        run = store.load(Training(config))
        assert run is not None and run.info["key"] == config.key() and len(run.history) == 1


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("graph", [False, True], ids=["eager", "graphed"])
@pytest.mark.parametrize("model_kw", [{}, None], ids=["lenet", "vit-no-dropout"])
def test_cuda_ensemble_matches_single_cuda_runs(model_kw, graph):
    base = RunConfig(subset=1000, epochs=2, device="cuda", batch_size=64, cuda_graph=graph) if model_kw == {} else \
        RunConfig(model="vit", model_kw={"dropout": 0.0}, subset=1000, epochs=2, device="cuda", batch_size=64,
                  cuda_graph=graph)
    # One test prediction in 1,000 may flip between the two ways of summing: atol 2e-3.
    _assert_matches_single_runs([base.replace(seed=s) for s in (0, 1, 2)], rtol=1e-3, atol=2e-3)
