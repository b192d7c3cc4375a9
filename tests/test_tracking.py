"""Tracking: config and every trained epoch logged; resumed runs continue their own log; reused runs log nothing."""

import sys
import types

import pytest

from mnistkit import executor, tracking, trainer
from mnistkit.questions import plan
from mnistkit.config import RunConfig
from mnistkit.errors import ConfigError
from mnistkit.params import notebook_cell
from mnistkit.questions import parameters
from mnistkit.store import Store

TINY = RunConfig(subset=100, epochs=2, batch_size=50, device="cpu")


def scalars(folder, name="test_acc") -> list:
    """(step, value) of every ``name`` event TensorBoard would show from ``folder``."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(folder))
    events.Reload()
    return [(e.step, e.value) for e in events.Scalars(name)]


def test_unknown_tracker_and_missing_package_are_config_errors(monkeypatch):
    with pytest.raises(ConfigError, match="'tracker' = 'mlflow': must be one of"):
        tracking.check("mlflow")
    monkeypatch.setattr(tracking, "installed", lambda package: False)
    for name in ("wandb", "tensorboard"):
        with pytest.raises(ConfigError, match=rf"needs the {name} package: pip install 'mnistkit\[{name}\]'"):
            tracking.check(name)
    assert tracking.check("none") == "none"


@pytest.mark.slow
def test_tensorboard_logs_config_and_each_epoch_then_nothing_for_a_reused_run(tmp_path):
    run = executor.make(Store(tmp_path), TINY, progress=False, tracker="tensorboard")
    folder = tmp_path / "tensorboard" / TINY.key()
    logged = scalars(folder)
    assert [step for step, _ in logged] == [1, 2]
    assert [value for _, value in logged] == pytest.approx(list(run.history["test_acc"]))
    assert [s for s, _ in scalars(folder, "train_loss")] == [1, 2]
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(folder))
    events.Reload()
    assert "config/text_summary" in events.Tags()["tensors"]
    assert TINY.key() in events.Tensors("config/text_summary")[0].tensor_proto.string_val[0].decode()

    files = sorted(folder.iterdir())
    again = executor.make(Store(tmp_path), TINY, progress=False, tracker="tensorboard")
    assert again.reused and sorted(folder.iterdir()) == files and scalars(folder) == logged


@pytest.mark.slow
def test_a_resumed_run_continues_its_own_tensorboard_log(tmp_path, monkeypatch):
    config = TINY.replace(epochs=3)
    real_evaluate, calls = trainer.evaluate, []

    def evaluate_then_stop(*args):
        calls.append(1)
        if len(calls) == 2:  # the second epoch dies before its end: epoch 1 is checkpointed
            raise KeyboardInterrupt
        return real_evaluate(*args)

    monkeypatch.setattr(trainer, "evaluate", evaluate_then_stop)
    with pytest.raises(KeyboardInterrupt):
        executor.make(Store(tmp_path), config, progress=False, tracker="tensorboard")
    monkeypatch.setattr(trainer, "evaluate", real_evaluate)
    folder = tmp_path / "tensorboard" / config.key()
    assert [s for s, _ in scalars(folder)] == [1]

    run = executor.make(Store(tmp_path), config, progress=False, tracker="tensorboard")
    logged = scalars(folder)
    assert [s for s, _ in logged] == [1, 2, 3]
    assert [v for _, v in logged] == pytest.approx(list(run.history["test_acc"]))


@pytest.mark.slow
def test_a_retried_epoch_replaces_what_the_interrupted_attempt_logged(tmp_path):
    """Killed after logging epoch 3 but before its checkpoint: the retry's epoch 3 is the one kept."""
    first = tracking.start("tensorboard", TINY, tmp_path)
    for epoch, acc in ((1, 0.1), (2, 0.2), (3, 0.3)):
        first.log({"epoch": epoch, "test_acc": acc})
    first.close()
    second = tracking.start("tensorboard", TINY, tmp_path)
    for epoch, acc in ((3, 0.33), (4, 0.4)):
        second.log({"epoch": epoch, "test_acc": acc})
    second.close()
    logged = scalars(tmp_path / "tensorboard" / TINY.key())
    assert [step for step, _ in logged] == [1, 2, 3, 4]
    assert [value for _, value in logged] == pytest.approx([0.1, 0.2, 0.33, 0.4])


class FakeWandb(types.ModuleType):
    """Records what the tracker asks of ``wandb``: the calls, in order."""

    def __init__(self):
        super().__init__("wandb")
        self.calls = []

    def init(self, **kwargs):
        self.calls.append(("init", kwargs))
        return self

    def log(self, row, step):
        self.calls.append(("log", step, row))

    def finish(self):
        self.calls.append(("finish",))


@pytest.mark.slow
def test_wandb_run_is_offline_keyed_by_the_run_and_resumed_under_the_same_id(tmp_path, monkeypatch):
    fake = FakeWandb()
    monkeypatch.setitem(sys.modules, "wandb", fake)
    monkeypatch.delenv("WANDB_MODE", raising=False)
    monkeypatch.setattr(tracking, "installed", lambda package: True)
    run = executor.make(Store(tmp_path), TINY, progress=False, tracker="wandb")
    kind, init = fake.calls[0]
    assert kind == "init"
    assert init["id"] == TINY.key() and init["resume"] == "allow" and init["mode"] == "offline"
    assert init["config"] == TINY.to_dict() and init["dir"] == str(tmp_path)
    logs = [c for c in fake.calls if c[0] == "log"]
    assert [step for _, step, _ in logs] == [1, 2]
    assert [row["test_acc"] for *_, row in logs] == list(run.history["test_acc"])
    assert fake.calls[-1] == ("finish",)

    fake.calls.clear()
    assert executor.make(Store(tmp_path), TINY, progress=False, tracker="wandb").reused
    assert fake.calls == []  # a reused run is not logged again

    monkeypatch.setenv("WANDB_MODE", "online")
    resumed = tracking.start("wandb", TINY.replace(epochs=3), tmp_path)
    resumed.log({"epoch": 3, "test_acc": 0.5})
    assert fake.calls[0][1]["mode"] == "online" and fake.calls[1] == ("log", 3, {"test_acc": 0.5})


def test_tracker_is_a_report_parameter_checked_before_any_work(monkeypatch):
    params = plan.load_params(overrides={"tracker": "tensorboard"})
    assert params.tracker == "tensorboard"
    assert parameters()().tracker == "none" and "\ntracker: str = \"none\"" in notebook_cell(parameters())
    with pytest.raises(ConfigError, match="'tracker'"):
        plan.load_params(overrides={"tracker": "mlflow"})
    monkeypatch.setattr(tracking, "installed", lambda package: False)
    with pytest.raises(ConfigError, match="needs the wandb package"):
        plan.load_params(overrides={"tracker": "wandb"})


def test_train_missing_hands_the_tracker_to_the_store(monkeypatch):
    seen = {}
    params = plan.load_params(overrides={"tracker": "tensorboard", "only": "q1"})

    class Empty(Store):
        def load(self, item):
            return None

    def run_all(store, configs, jobs=1, progress=True, cluster=None, tracker="none"):
        seen["tracker"], seen["runs"] = tracker, len(configs)
        return []

    monkeypatch.setattr(executor, "run_all", run_all)
    plan.train_missing(params, Empty("/nonexistent"), progress=False)
    assert seen == {"tracker": "tensorboard", "runs": 2}  # question 1 over the default seeds [0, 1]
