"""What report.ipynb calls: its parameters checked, the missing runs trained, each question's result
(computed once per ``Report``), and the display of text, figures (with alt text) and tables.

The notebook's setup cell makes one ``Report``; every later cell asks it for a result and shows
that result's text, figures and table. A cell depends on the setup cell only, so any cell can be
re-run on its own, and re-running the parameters cell and everything after it starts afresh.
"""

from __future__ import annotations

import io
import json
import struct
import math
import time
from functools import cached_property
from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd
import torch
from IPython.display import Image, Markdown, display

from . import architecture, codebase, data, numerics, paths, plots, progress
from .config import RunConfig, device_name, resolve_device
from .files import atomic_write_text
from .params import Base as Params
from .params import from_notebook
from .questions import failures, headlines, parameters, plan, registry, transfer
from .questions.text import (MODEL_NAMES, asked, asked_of, captioned, margin_words, markdown, say, text_columns,
                             training_set)
from .store import Store


DPI = 110  # the figures' resolution, in pixels per inch


def _words(value) -> str:
    """A value for a sentence: a mapping as 'key value, key value'."""
    if isinstance(value, dict):
        return ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in value.items())
    return str(value)


def environment(params: Params) -> dict:
    """Where and with what the report ran: profile, device, torch version, threads per run, jobs and,
    on a CPU, the pinned kernels (``numerics.fingerprint``)."""
    device = resolve_device(params.device)
    env = {"profile": params.profile, "device": device, "device_name": device_name(device), "torch": torch.__version__,
           "threads": numerics.RUN_THREADS if device == "cpu" else torch.get_num_threads(), "jobs": params.jobs}
    if device == "cpu":
        env["kernels"] = {k: v for k, v in numerics.fingerprint().items() if k != "threads"}
    return env


def _plain(value):
    """``value`` with every NaN (a spread or interval from one seed) as None: null in JSON."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, float) and math.isnan(value):
        return None
    return value


class Report:
    """One execution of the report: parameters, store, what was trained, and cached results."""

    def __init__(self, params: Params, store: Store | None = None, trained: dict | None = None):
        self.params = params
        self.store = store or Store()
        self.trained = trained or {"runs": 0, "trained": 0, "baselines": 0, "baselines_computed": 0, "seconds": 0.0,
                                   "runs_seconds": 0.0}
        self.started = time.perf_counter()
        self.environment = environment(params)
        self._results: dict = {}
        self.numbers: dict = {}  # ("figure", name) or ("table", caption) -> its number: a cell run again keeps them

    @classmethod
    def start(cls, namespace: dict, store: Store | None = None) -> "Report":
        """The setup cell's call: the parameters in ``namespace`` (the notebook's globals) checked
        before any work, then every missing run trained."""
        started = time.perf_counter()
        params = plan.check(from_notebook(namespace, parameters()))
        progress.set_mode(params.progress)
        store = store or Store(paths.check_store())  # before anything is written
        report = cls(params, store, plan.train_missing(params, store))
        report.started = started
        return report

    def selected(self, question: str) -> bool:
        return self.params.selected(question)

    @property
    def complete(self) -> bool:
        """Whether every question is shown (no ``only``): the closing sections need them all."""
        return self.params.only is None

    # ------------------------------------------------------------ results, each computed once

    def _result(self, name: str, make):
        if name not in self._results:
            self._results[name] = make()
        return self._results[name]

    def result(self, name: str):
        """Question ``name``'s result (``q1``, ...), from the store, with the results of those it needs."""
        q = registry()[name]
        return self._result(name, lambda: q.result(self.params, self.store, {n: self.result(n) for n in q.needs}))

    def results(self) -> list:
        """Every question's result, in order."""
        return [self.result(name) for name in registry()]

    def numbered(self) -> list:
        """``(question number, result)`` of every question, in order."""
        return [(q.number, self.result(name)) for name, q in registry().items()]

    def failures(self) -> failures.Failures:
        return self._result("failures", lambda: failures.result(self.params, self.store, self.result("q2"),
                                                                 self.result("q6")))

    # ------------------------------------------------------------ text

    def header(self) -> str:
        """The title, what the report is for, the data and how the study was run and read."""
        p = self.params
        rule = say("report", "margin_rule", share=None if p.margin is not None else data.MARGIN_SHARE,
                   dataset=data.dataset(p.dataset).title)
        return say("report", "header", p=p, d=data.dataset(p.dataset), train_size=data.TRAIN_SIZE,
                   test_size=data.TEST_SIZE, training_set=training_set(p.train_subset),
                   margin=margin_words(p.equivalence), margin_rule=rule, reference=self._names()[0] if
                   p.reference is not None else None)

    def answers(self) -> str:
        """The answers, one per question: the report's first section."""
        return headlines.answers(self.numbered())

    def open(self, result, level: int = 2) -> None:
        """A section's opening: its title and question; a pointer to its answer on the answers page (the
        answer itself where that page is not shown, ``only``); then its protocol."""
        name = next((n for n, r in self._results.items() if r is result and n in registry()), None)
        theirs = asked_of()
        how = "" if theirs == self.params.dataset or not asked(name) else \
            f" (the assignment's, asked of {data.dataset(theirs).title})"
        question = f"*The question{how}.* {registry()[name].question}\n\n" if name else ""
        answer = "" if self.complete else f"**{headlines.sentence(result.answer())}**\n\n"
        title = f"{registry()[name].number}. {result.title}" if name else result.title
        self.say(f"{'#' * level} {title}\n\n{question}{answer}**Protocol.** {result.protocol()}")

    @staticmethod
    def architecture(model: str, model_kw: dict | None = None) -> pd.DataFrame:
        """The layers, output shapes and parameters of ``model`` as a run builds it (``architecture.table``)."""
        return captioned(architecture.table(model, model_kw), f"{headlines.sentence(MODEL_NAMES[model])}'s layers: "
                         "each one's output shape for one image and its learned parameters.")

    @staticmethod
    def codebase() -> str:
        """Question 1's codebase: where it lives, how it is layered, and the code of the parts the question names."""
        return say("report", "codebase", address=codebase.address(), parts=codebase.excerpts(),
                   layers=len(codebase.LAYERS))

    def seeding(self) -> str:
        """What is seeded, then two trainings of one configuration from scratch, compared bit for bit."""
        device = resolve_device(self.params.device)
        config = RunConfig(**codebase.RERUN, dataset=self.params.dataset, seed=self.params.seeds[0], device=device,
                           deterministic=device.startswith("cuda"))
        seeded = "\n".join(f"- {line};" for line in codebase.SEEDED).rstrip(";") + "."
        return f"**What is seeded.** Every random source of a run, from its configuration:\n\n{seeded}\n\n" + \
            codebase.rerun(config).text()

    def appendix(self) -> str:
        """What the study cost and where it ran: its runs, their training CPU-seconds, the machine and kernels."""
        t, env = self.trained, self.environment
        cpu = env["device"] == "cpu"
        how = (f"one thread each, {t.get('jobs', env['jobs'])} at a time" if cpu and not self.params.cluster
               else "as each run measured them")
        return say("report", "appendix", t=t, env=env, baselines=t["baselines"], how=how,
                   unit="CPU-seconds" if cpu else "seconds", kernels=_words(env["kernels"]) if "kernels" in env else "")

    def summary(self) -> dict:
        """summary.json's content: where it ran, each question's headline numbers, runs and time."""
        out = {**self.environment, "dataset": self.params.dataset, "protocol": self.params.protocol,
               "validation": self.params.validation, "margin": self.params.equivalence}
        for name in registry():
            if self.selected(name):
                out[name] = self.result(name).summary()
        out["runs"], out["runs_trained"] = self.trained["runs"], self.trained["trained"]
        out["runs_seconds"] = self.trained["runs_seconds"]  # their training seconds, trained now or read
        out["wall_seconds"] = time.perf_counter() - self.started
        return _plain(out)

    def headlines(self) -> pd.DataFrame:
        """The closing table of headline numbers (every question selected)."""
        return headlines.table(self.numbered())

    @cached_property
    def _reference(self) -> dict | None:
        """The ``reference`` build's summary.json, where one is set (``plan.check`` has made sure it is there)."""
        if self.params.reference is None:
            return None
        return json.loads(Path(self.params.reference).expanduser().read_text())

    def _datasets(self) -> set:
        """The datasets the report studies or sets its study beside."""
        theirs = self._reference
        return {self.params.dataset} | ({theirs.get("dataset", data.DEFAULT)} if theirs else set())

    def _names(self) -> tuple[str, str]:
        """The reference build's dataset and this one's, in words."""
        theirs = self._reference or {}
        return (data.dataset(theirs.get("dataset", data.DEFAULT)).title, data.dataset(self.params.dataset).title)

    def transfer(self, summary: dict | None = None) -> pd.DataFrame | None:
        """This report's comparisons beside the ``reference`` build's, each change tested (the transfer table),
        where a reference is set."""
        theirs = self._reference
        return None if theirs is None else transfer.table(theirs, summary or self.summary(), self._names())

    def transfer_section(self) -> None:
        """Show the transfer section, where a reference is set: what it tests, the table, the discussion."""
        theirs = self._reference
        if theirs is None:
            return
        ours, names = self.summary(), self._names()
        self.say(say("report", "transfer_intro", names=names, margin=margin_words(transfer.margin(theirs, ours))))
        self.table(self.transfer(ours))
        self.say(transfer.discussion(theirs, ours, names))

    def closing(self) -> str:
        """The limitations, the conclusion and the references (every question shown)."""
        p = self.params
        budgets: dict = {}  # epochs -> the questions that train that many
        for name, q in registry().items():
            if hasattr(getattr(p, name), "epochs"):
                budgets.setdefault(getattr(p, name).epochs, []).append(str(q.number))
        epochs = sorted(budgets.items(), reverse=True)
        limits = say("report", "limitations", p=p, seeds=len(p.seeds), epochs=epochs,
                     margin=margin_words(p.equivalence))
        lines = [line for r in self.results() if hasattr(r, "conclusion") and (line := r.conclusion())]
        return "\n\n".join([limits, say("report", "conclusion", lines=lines),
                            say("report", "references", datasets=self._datasets())])

    def finish(self) -> str:
        """Write summary.json and headlines.md (the README's results table) for the whole report,
        when a figures folder is set; the closing section (``appendix``)."""
        summary = self.summary()
        if self.complete and self.params.figures_dir:
            folder = Path(self.params.figures_dir).expanduser()
            atomic_write_text(folder / "summary.json", json.dumps(summary, indent=2, sort_keys=True) + "\n")
            atomic_write_text(folder / "headlines.md", markdown(self.headlines()) + "\n")
            if self.params.reference is not None:
                atomic_write_text(folder / "transfer.md", markdown(self.transfer(summary)) + "\n")
        return self.appendix()

    # ------------------------------------------------------------ display

    @staticmethod
    def say(markdown: str) -> None:
        """Show ``markdown``; an empty text (a section this build does not have) shows nothing."""
        if markdown:
            display(Markdown(markdown))

    def _number(self, kind: str, key: str) -> int:
        """The number of the figure or table ``key``: the next one of its kind when first shown, the same one when
        its cell is run again."""
        if (kind, key) not in self.numbers:
            self.numbers[(kind, key)] = 1 + sum(k == kind for k, _ in self.numbers)
        return self.numbers[(kind, key)]

    def figure(self, fig, name: str, alt: str, caption: str = "") -> None:
        """Show ``fig`` as a PNG with ``alt`` as its alternative text and a numbered caption under it,
        and save it as ``figures_dir/name.png`` when a figures folder is set."""
        number = self._number("figure", name)
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png", dpi=DPI, bbox_inches="tight")
        plt.close(fig)
        png = buffer.getvalue()
        if self.params.figures_dir is not None:
            folder = Path(self.params.figures_dir).expanduser()
            folder.mkdir(parents=True, exist_ok=True)
            (folder / f"{name}.png").write_bytes(png)
        inches = struct.unpack(">I", png[16:20])[0] / DPI  # the PNG's width (its IHDR chunk)
        display(Image(png), metadata={"image/png": {"alt": alt, "print_width": f"{inches * plots.PRINT_SCALE:.2f}in"}})
        self.say(f"*Figure {number}.* {caption}".rstrip())

    def table(self, frame: pd.DataFrame | None) -> None:
        """Show a result's table under its numbered caption (``frame.attrs["caption"]``, which every table of
        the report has): its values are already formatted, its index is not shown. None (a table this build
        has no data for, such as an ablation not run) shows nothing."""
        if frame is None:
            return
        if not frame.attrs.get("caption"):
            raise ValueError(f"a table without a caption: columns {list(frame.columns)}")
        self.say(f"*Table {self._number('table', frame.attrs['caption'])}.* {frame.attrs['caption']}")
        text = text_columns(frame)
        display(frame.style.hide(axis="index")
                .set_properties(subset=text, **{"text-align": "left"})
                .set_table_styles([{"selector": f"th.col{frame.columns.get_loc(c)}", "props": "text-align: left"}
                                   for c in text]))
