"""Question 1's codebase on the page: excerpts read from the source, the layers, and the rerun check."""

import inspect
import re

import pytest

from mnistkit import codebase, models, trainer
from mnistkit.config import RunConfig
from mnistkit.errors import ReproducibilityError
from mnistkit.report import Report

SMALL = RunConfig(model="lenet", epochs=1, subset=200, batch_size=50, seed=0, device="cpu")


def test_an_excerpt_is_the_live_source_without_its_docstrings():
    code = codebase.source(models.LeNet)
    assert code.startswith("class LeNet(nn.Module):") and "def forward(self, x):" in code
    assert '"""' not in code and "LeNet-5 as in the assignment" not in code
    body = [line for line in inspect.getsource(models.LeNet).splitlines() if "self.conv1 = " in line]
    assert body and body[0] in code  # the line as the module holds it


def test_the_excerpts_cover_data_model_and_trainer_and_the_text_shows_them_as_python():
    titles = [title for title, _ in codebase.excerpts()]
    assert [t.split(":")[0] for t in titles] == ["Data", "Model", "Trainer"]
    text = Report.codebase()
    for name in ("def batches(", "class LeNet(", "def train_step(", "def epoch_loop(", "def train_epoch(",
                 "def evaluate("):
        assert name in text
    assert text.count("```python") == 3 and "the `mnistkit/` folder" in text


def test_the_rerun_trains_twice_from_scratch_and_shows_both_full_hashes():
    rerun = codebase.rerun(SMALL)
    assert rerun.equal and len(rerun.trainings) == 2
    hashes = re.findall(r"weights' sha256 ([0-9a-f]+)", rerun.text())
    assert len(hashes) == 2 and hashes[0] == hashes[1] and len(hashes[0]) == 64
    assert "200 training images, seed 0" in rerun.text()


def test_the_rerun_stops_the_build_when_the_trainings_differ(monkeypatch):
    fit, calls = trainer.fit, []

    def second_differs(config, **kw):  # as if a random source escaped the seed
        calls.append(config)
        return fit(config.replace(seed=len(calls)), **kw)

    monkeypatch.setattr(trainer, "fit", second_differs)
    with pytest.raises(ReproducibilityError, match="differ"):
        codebase.rerun(SMALL)
    assert len(calls) == 2
