"""The report: parameter files validated up front, papermill refusals, and the smoke build end to end."""

import ast
import dataclasses
import html as htmlmod
import json
import os
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
import yaml

from conftest import ROOT, files_under
from mnistkit import codebase, data
from mnistkit.questions import plan, q2
from mnistkit.__main__ import main
from mnistkit.errors import ConfigError
from mnistkit.params import _assigned, assigned_names, names, notebook_cell
from mnistkit.questions import parameters, registry

sys.path.insert(0, str(ROOT / "tests" / "golden"))
import cases  # noqa: E402


def test_the_fashion_profile_is_the_full_plan_on_fashion_mnist():
    full, fashion = (yaml.safe_load((ROOT / "parameters" / f"{n}.yaml").read_text()) for n in ("full", "fashion"))
    assert fashion.pop("dataset") == "fashion_mnist" and full.get("dataset", "mnist") == "mnist"
    assert (fashion.pop("profile"), fashion.pop("figures_dir")) == ("fashion", "figures/fashion")
    assert fashion.pop("reference") == "figures/summary.json"
    assert {k: v for k, v in full.items() if k not in ("profile", "figures_dir")} == fashion
    mnist = plan.first_stage(plan.load_params(ROOT / "parameters" / "full.yaml"))
    clothes = plan.first_stage(plan.load_params(ROOT / "parameters" / "fashion.yaml"))
    assert [dataclasses.replace(c, dataset="mnist") for q in clothes.values() for c in q] == [c for q in mnist.values() for c in q]


def test_the_committed_parameter_files_and_the_schema_defaults_are_valid():
    for name in ("full", "smoke", "quick", "fashion"):
        params = plan.load_params(ROOT / "parameters" / f"{name}.yaml")
        assert params.profile == name
    assert plan.load_params().profile == "interactive"
    full = plan.first_stage(plan.load_params(ROOT / "parameters" / "full.yaml"))
    assert full["q1"][0].epochs == 10 and full["q1"][0].subset is None
    assert len(full["q2"]) >= 11 * 3
    assert {c.model for c in full["q6"]} == {"vit", "lenet"}
    assert all(c.model_kw.get("depth", 2) == 2 for c in full["q6"] if c.model == "vit")
    search = [c for c in full["q3"] if type(c).__name__ == "BovwConfig"]  # the baseline's search is planned
    assert len(search) == 24 and {c.scored_on for c in search} == {"validation"} and {c.subset for c in search} == {10_000}
    # validation images serve selections only: what chooses nothing trains on all 60,000
    scored = full["q1"] + full["q4"] + [c for c in full["q5"] + full["q6"] if c.subset is None]
    assert {(c.validation, c.train_images) for c in scored} == {(0, 60_000)}
    assert {c.validation for c in full["q2"]} == {data.VALIDATION_SIZE} and {c.train_images for c in full["q6"] if c.subset} == {6000}
    assert full["q1"] == [c for c in full["q6"] if c.model == "lenet" and c.subset is None
                          and c.optimizer == "adam"]  # question 1's runs are question 6's assignment LeNets


def test_the_selected_setting_is_retrained_with_the_validation_images_under_that_protocol_only():
    params = plan.load_params(ROOT / "parameters" / "full.yaml")
    chosen = [c for n, _, c in q2.settings(params) if n == 3]
    again = q2.retrained(params, 3)
    assert [c.seed for c in again] == params.seeds == [c.seed for c in chosen]
    assert all(c.validation == 0 and c.train_images == 60_000 for c in again)
    assert all(a.to_dict() == {**c.to_dict(), "validation": 0} for a, c in zip(again, chosen))
    assert not {c.key() for c in again} & {c.key() for q in plan.first_stage(params).values() for c in q
                                           if hasattr(c, "seed")}
    assignment = plan.load_params(ROOT / "parameters" / "full.yaml", {"protocol": "assignment"})
    assert q2.retrained(assignment, 3) == []


def _notebook():
    return json.loads((ROOT / "report.ipynb").read_text())


def test_the_html_title_is_the_title_the_report_writes():
    import nbformat
    import papermill.engines  # noqa: F401  (it loads the mnistkit engine, which imports papermill's)

    from mnistkit import kernel

    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(outputs=[
        nbformat.v4.new_output("display_data", {"text/markdown": "Some text"}),
        nbformat.v4.new_output("display_data", {"text/markdown": "# A study (MNIST)\n\nMore text."})])])
    assert kernel.title(nb) == "A study (MNIST)"
    assert kernel.title(nbformat.v4.new_notebook()) is None


def test_the_parameters_cell_is_the_schema_and_papermill_documents_every_parameter():
    import papermill

    cell = next(c for c in _notebook()["cells"] if "parameters" in c["metadata"].get("tags", []))
    held = _assigned("".join(cell["source"]))  # each parameter it shows
    report_wide = [n for n in names(parameters()) if n not in registry()]
    assert set(report_wide) <= set(held) and held == names(parameters())[:len(held)], held  # later questions may wait
    assert "".join(cell["source"]) + "\n" == notebook_cell(parameters(), only=held), \
        "regenerate it: python -m mnistkit params --cell"
    inferred = papermill.inspect_notebook(str(ROOT / "report.ipynb"))
    assert list(inferred) == held
    for name, p in inferred.items():
        assert p["inferred_type_name"] not in ("None", ""), name
        assert p["help"], name
    assert inferred["only"]["inferred_type_name"] == "Optional[str]"
    assert inferred["q2"]["inferred_type_name"] == "dict" and "settings" in inferred["q2"]["help"]


def test_the_notebook_cells_hold_no_statistics_or_verdicts():
    """Apart from the parameters cell, code cells call the package and show what it returns: no
    comparison, no arithmetic, and every ``if`` asks only whether a section is shown."""
    code = [c for c in _notebook()["cells"]
            if c["cell_type"] == "code" and "parameters" not in c["metadata"].get("tags", [])]
    for cell in code:
        tree = ast.parse("".join(cell["source"]))
        for node in ast.walk(tree):
            assert not isinstance(node, (ast.Compare, ast.BinOp, ast.BoolOp, ast.Subscript, ast.Lambda)), \
                ast.unparse(node)
            if isinstance(node, ast.If):
                assert ast.unparse(node.test) in ("report.complete",) or \
                    ast.unparse(node.test).startswith("report.selected("), ast.unparse(node.test)
            # the words live in the questions' templates: a cell names figures and short plot titles only
            assert not isinstance(node, ast.JoinedStr), ast.unparse(node)
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                assert len(node.value) <= 40, node.value


def test_params_schema_names_unknown_keys_with_their_path_and_keeps_defaults():
    params = parameters().from_dict({"q1": {"epochs": 3}})
    assert params.q1.epochs == 3 and params.q2.epochs == parameters()().q2.epochs
    with pytest.raises(ConfigError, match=r"'q2.study.trails' = 48: is not a parameter; allowed in q2.study"):
        parameters().from_dict({"q2": {"study": {"trails": 48}}})
    with pytest.raises(ConfigError, match=r"'q1' = 3: must be a mapping"):
        parameters().from_dict({"q1": 3})
    assert parameters().from_dict(parameters()().to_dict()) == parameters()()


def test_the_names_checked_are_the_parameters_cells_and_papermills_since_it_ran():
    cell = notebook_cell(parameters())
    known = names(parameters())
    injected = "# Parameters\nepochz = 3\nonly = 'q1'\n"
    assert assigned_names(["import x", cell, injected]) == ["epochz", "only"] + known
    assert assigned_names([injected, "x = 1"]) == ["epochz", "only"]
    # the parameters cell re-run after it: its values are in force, papermill's are not
    assert assigned_names([injected, cell, "y = 2"]) == known
    assert assigned_names(["a = 1"]) == []
    # a misspelt name typed into the parameters cell, or an extra line, is seen
    misspelt = cell.replace("train_subset: Optional[int]", "train_subest: Optional[int]") + "trian_subset = 500\n"
    assert {"train_subest", "trian_subset"} <= set(assigned_names([misspelt]))
    assert "train_subset" not in assigned_names([misspelt])


BAD_PARAMS = [
    ({"lerning_rate": 0.1}, "'lerning_rate'"),
    ({"only": "q99"}, "'only'"),
    ({"jobs": 0}, "'jobs'"),
    ({"device": "tpu"}, "'device'"),
    ({"seeds": [0, -1]}, "'seeds'"),
    ({"seeds": []}, "'seeds'"),
    ({"seeds": [0, 0]}, "'seeds'"),  # an interval over copies of one run
    ({"figures_dir": "/proc/x"}, "'figures_dir'"),  # else the build would fail at its end
    ({"figures_dir": ""}, "'figures_dir'"),
    ({"train_subset": 1000, "q6": {"sizes": [1000, None]}}, "'q6.sizes'"),  # null is the 1,000 here
    ({"train_subset": 605}, "'train_subset'"),
    ({"progress": "loud"}, "'progress'"),
    ({"q1": {"epochs": 0}}, "'q1.epochs'"),
    ({"q1": {"epochs": 2, "lr": 0.1}}, "'q1.lr'"),
    ({"protocol": "test"}, "'protocol'"),
    ({"q2": {"epochs": 1, "settings": [{"optimizer": "adagrad"}, {}], "study": {"trials": 8}}},
     "'q2.settings[0].optimizer'"),
    ({"q2": {"epochs": 1, "settings": [{"lr": -1}, {}]}}, "'q2.settings[0].lr'"),
    ({"q2": {"epochs": 1, "settings": [{"lr": 0.1}]}}, "'q2.settings'"),  # a best and a second best
    ({"q2": {"study": {"trials": 2}}}, "'q2.study.trials'"),
    ({"q2": {"study": {"epochs": 0}}}, "'q2.study.epochs'"),
    ({"q3": {"bovw": {"words": 1}}}, "'q3.bovw.words'"),
    ({"q3": {"bovw": {"wrods": 64}}}, "'q3.bovw.wrods'"),
    ({"q3": {"search": {"space": {"step": [4, 0]}}}}, "'q3.search.space.step'"),
    ({"q3": {"search": {"space": {"step": []}}}}, "'q3.search.space.step'"),
    ({"q3": {"search": {"space": {"seed": [1, 2]}}}}, "'q3.search.space'"),
    ({"q3": {"bovw": {"step": 4}, "search": {"space": {"step": [4, 5]}}}}, "'q3.search.space'"),
    ({"q3": {"search": {"images": 1_000_000}}}, "'q3.search.images'"),
    ({"q3": {"search": {"trials": 0}}}, "'q3.search.trials'"),
    ({"q3": {"search": {"trials": 3}}}, "'q3.search.trials'"),  # the space holds 2 settings (step 4 or 7)
    ({"q3": {"search": {"seed": -1}}}, "'q3.search.seed'"),
    ({"q3": {"search": {"space": {"step": [4, 4]}}}}, "'q3.search.space.step'"),
    ({"q3": {"bovw": {"validation": 5000}}}, "'q3.bovw.validation'"),  # the baseline trains on all images
    ({"q3": {"bovw": {"seed": 3}}}, "'q3.bovw.seed'"),  # the report's seeds seed it
    ({"q4": {"epochs": -3}}, "'q4.epochs'"),
    ({"q5": {"sizes": [600, 6001], "epochs": 1}}, "'q5.sizes[1]'"),
    ({"q5": {"sizes": [600, 60000], "epochs": 1}}, "'q5.sizes[1]'"),
    ({"q5": {"sizes": [600, 600], "epochs": 1}}, "'q5.sizes'"),
    ({"q6": {"sizes": [None, None]}}, "'q6.sizes'"),
    ({"q6": {"seeds": [1, 1]}}, "'q6.seeds'"),
    ({"q6": {"sizes": [6000], "epochs": 1, "seeds": [0],
             "recipes": {"x": {"optimizer": "adam", "vit": {"depth": 0}}}}}, "'q6.recipes.x"),
    ({"q6": {"sizes": [6000], "epochs": 1, "seeds": [0],
             "recipes": {"x": {"warmup_epochs": 5}}}}, "'q6.recipes.x.warmup_epochs'"),
]


@pytest.mark.parametrize("values, name", BAD_PARAMS, ids=[next(iter(v)) + str(i) for i, (v, _) in enumerate(BAD_PARAMS)])
def test_bad_parameter_file_is_refused_before_any_work(tmp_path, capsys, values, name):
    path = tmp_path / "bad.yaml"
    base = yaml.safe_load((ROOT / "parameters" / "smoke.yaml").read_text())
    path.write_text(yaml.safe_dump({**base, **values}))
    store = tmp_path / "runs"
    assert main(["params", str(path), "--store", str(store)]) == 2
    err = capsys.readouterr().err
    assert name in err and "parameter" in err
    assert files_under(store) == []


def test_a_repeated_training_set_is_refused_only_where_its_question_runs():
    values = {"train_subset": 1000, "q6": {"sizes": [1000, None]}}  # null is the same 1,000 here
    assert plan.load_params(ROOT / "parameters" / "smoke.yaml", {**values, "only": "q1"}).only == "q1"
    with pytest.raises(ConfigError, match="'q6.sizes'"):
        plan.load_params(ROOT / "parameters" / "smoke.yaml", {**values, "only": "q6"})


def test_a_figures_folder_that_can_be_made_is_accepted_without_making_it(tmp_path):
    params = plan.load_params(ROOT / "parameters" / "smoke.yaml", {"figures_dir": str(tmp_path / "a" / "b")})
    assert params.figures_dir == str(tmp_path / "a" / "b") and list(tmp_path.iterdir()) == []


def test_a_dataset_cannot_overwrite_another_datasets_figures(tmp_path):
    """A figures folder holding another dataset's summary.json is refused before any work, naming both."""
    summary = tmp_path / "summary.json"
    summary.write_text(json.dumps({"dataset": "fashion_mnist", "profile": "fashion"}))
    with pytest.raises(ConfigError, match=r"'figures_dir'.*holds Fashion-MNIST's figures.*MNIST's would overwrite.*"
                                          r"figures/mnist"):
        plan.load_params(ROOT / "parameters" / "smoke.yaml", {"figures_dir": str(tmp_path)})
    assert [p.name for p in tmp_path.iterdir()] == ["summary.json"]
    summary.write_text(json.dumps({"dataset": "mnist"}))  # its own figures: a rebuild replaces them
    assert plan.load_params(ROOT / "parameters" / "smoke.yaml", {"figures_dir": str(tmp_path)}).dataset == "mnist"


def test_more_jobs_than_cores_train_with_one_process_a_core_and_say_so(tmp_path, capsys, monkeypatch):
    from mnistkit import executor
    from mnistkit.store import Store

    seen = []
    monkeypatch.setattr(executor, "run_all", lambda store, specs, jobs=1, **kw: seen.append(jobs) or [])
    params = plan.load_params(ROOT / "parameters" / "smoke.yaml", {"jobs": 1_000_000, "only": "q1"})
    plan.train_missing(params, Store(tmp_path), progress=False)
    assert seen == [os.cpu_count()]
    assert capsys.readouterr().err.strip() == (f"jobs: 1,000,000 is more than the {os.cpu_count()} CPU cores of this "
                                               f"machine; training with {os.cpu_count()} processes")


def test_missing_parameter_file_is_refused(capsys, tmp_path):
    assert main(["params", str(tmp_path / "nope.yaml")]) == 2
    assert "no such file" in capsys.readouterr().err


PAPERMILL_BAD = [
    ({"lerning_rate": 0.1}, "lerning_rate"),
    ({"epochz": 3}, "'epochz' = 3: is not a parameter; allowed: ['profile', 'dataset', 'protocol', 'only',"),
    ({"q1": {"epochs": 2, "sed": 1}}, "'q1.sed'"),
    ({"only": "q9"}, "'only'"),
    ({"q5": {"sizes": [605], "epochs": 1}}, "'q5.sizes[0]'"),
    ({"jobs": "two"}, "'jobs'"),
]


@pytest.mark.parametrize("values, name", PAPERMILL_BAD, ids=[next(iter(v)) for v, _ in PAPERMILL_BAD])
@pytest.mark.slow
def test_papermill_run_with_a_bad_parameter_fails_at_the_top_with_nothing_stored(tmp_path, monkeypatch, values, name):
    import papermill
    from papermill.exceptions import PapermillExecutionError

    store = tmp_path / "runs"
    monkeypatch.setenv("MNISTKIT_STORE", str(store))
    params = {**yaml.safe_load((ROOT / "parameters" / "smoke.yaml").read_text()), **values}
    with pytest.raises(PapermillExecutionError) as caught:
        papermill.execute_notebook(str(ROOT / "report.ipynb"), str(tmp_path / "out.ipynb"), parameters=params,
                                   kernel_name="python3", cwd=str(ROOT), progress_bar=False)
    assert caught.value.ename == "ConfigError" and name in caught.value.evalue
    assert files_under(store) == []


# Chromium prints a Letter or A4 page about 720 CSS px wide inside its margins; an output area
# starts after the 64 px prompt column. Cells wrap between words, so a table fits when its
# narrowest layout does: each column as wide as its longest word, at about 8 px a character at
# 13 px, plus 13 px of padding.
PAGE_PX, CHAR_PX, PAD_PX = 720 - 80, 8, 13


def table_widths(html: str) -> list[tuple[int, list]]:
    """The narrowest width in CSS px (estimated) and the header of every table in ``html``."""
    from bs4 import BeautifulSoup

    out = []
    for table in BeautifulSoup(html, "html.parser").find_all("table"):
        rows = [[c.get_text(" ", strip=True) for c in tr.find_all(["th", "td"])] for tr in table.find_all("tr")]
        columns = zip(*[r + [""] * (len(rows[0]) - len(r)) for r in rows])
        width = sum(CHAR_PX * max(len(w) for cell in column for w in cell.split(" ")) + PAD_PX
                    for column in columns)
        out.append((width, rows[0]))
    return out


def check_readable(html: str) -> None:
    """Every figure has alternative text, every table fits the printed page, no snake_case header."""
    from bs4 import BeautifulSoup

    images = BeautifulSoup(html, "html.parser").find_all("img")
    assert images and all(img.get("alt") and "No description" not in img["alt"] for img in images)
    for width, header in table_widths(html):
        assert width <= PAGE_PX, (width, header)
        assert not [h for h in header if re.fullmatch(r"[a-z]+(_[a-z]+)+", h)], header


def _build_smoke(tmp_path, store, *options):
    env = {**os.environ, "MNISTKIT_STORE": str(store)}
    out, figures = tmp_path / "report", tmp_path / "figures"
    result = subprocess.run(["bash", "build.sh", "--profile", "smoke", "--out", str(out), "--figures", str(figures),
                             *options], cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "without encryption" not in result.stderr  # the kernel runs over IPC
    assert "\x1b[A" not in result.stderr and "\r" not in result.stderr  # a log gets plain lines
    return out, figures, result.stderr


@pytest.mark.slow
def test_smoke_report_builds_with_every_section_and_gives_the_golden_numbers_locally_and_on_a_cluster(
        tmp_path, dask_cluster):
    store = tmp_path / "runs"
    out, figures, log = _build_smoke(tmp_path / "first", store, "--jobs", "1")
    html = (out / "report.html").read_text()
    title = re.search(r"<title>(.*?)</title>", html).group(1)  # the report's own title, not the file's name
    assert title == "CNNs, a Transformer and a classical baseline on handwritten digits (MNIST)"
    assert re.search(r"<h1[^>]*>" + re.escape(title), html)
    for heading in ("1. LeNet, logged at every epoch", "2. Hyperparameters", "3. The best CNN against SIFT",
                    "4. Doubling the convolutional layers", "5. Training-set size", "6. A 2-layer Transformer",
                    "Where the models fail", "Answers", "How the study was computed", "Figure 11."):
        assert heading in html, heading
    assert html.count("data:image/png") >= 11
    assert html.count("<table") >= 7
    assert not re.search(r'<script[^>]+src="http', html), "the report must open offline"
    check_readable(html)
    assert "Traceback" not in html
    words = re.sub(r"\s+", " ", htmlmod.unescape(re.sub(r"<[^>]+>", " ", re.sub(r"<style.*?</style>", "", html,
                                                                                  flags=re.S))))
    claims = Counter(re.findall(r"([-+]\d+\.\d+)(?: points)? (?:\(95% interval |\[)([-+]\d+\.\d+)(?: to |, )([-+]\d+\.\d+)",
                                words))  # a difference and its interval, in either of the report's two forms
    assert claims and max(claims.values()) <= 2, claims.most_common(3)  # each claim in its answer and its evidence
    has_chromium = subprocess.run(["bash", "-c", "source ./build.sh; chromium_bin"], cwd=ROOT,
                                  capture_output=True, text=True).stdout.strip()
    if has_chromium:
        pdf = (out / "report.pdf").read_bytes()
        assert pdf.startswith(b"%PDF") and len(re.findall(rb"/Type\s*/Page\b", pdf)) >= 3
    else:  # the HTML alone, and one line on how to get the PDF
        assert not (out / "report.pdf").exists()
        assert len([line for line in log.splitlines() if line.startswith("[build] no PDF: it needs Chromium")]) == 1
    assert len(list(figures.glob("*.png"))) >= 11

    summary = json.loads((figures / "summary.json").read_text())
    for key in ("profile", "device", "torch", "wall_seconds"):
        assert key in summary
    assert summary["profile"] == "smoke"
    assert 0 < summary["q1"]["test_acc_mean"] <= 1 and summary["q1"]["seeds"] == 2 and 0 < summary["q3"]["bovw_test_acc_mean"] <= 1
    assert set(summary["q5"]["equal_epochs"]["test_acc_mean"]) == {"200", "500", "1000"}
    assert set(summary["q5"]["equal_steps"]["test_acc_mean"]) == {"200", "500", "1000"}
    assert summary["protocol"] == "validation" and summary["q2"]["selected_by"] == "validation"
    assert summary["q2"]["trials"] == 8 and sum(summary["q2"]["importance"].values()) == pytest.approx(1, abs=1e-6)
    for key in ("best_val_acc_mean", "best_test_acc_mean", "best_test_acc_std"):
        assert 0 < summary["q2"][key] <= 1, key
    assert summary["q2"]["best_retrained"] is True  # scored after retraining with the validation images
    for key in ("cnn_minus_bovw", "cnn_minus_bovw_ci95", "mcnemar_p", "search", "bovw_test_acc_std"):
        assert key in summary["q3"], key
    assert summary["q3"]["train_images"] == {"cnn": 1000, "bovw": 1000} and len(summary["q3"]["bovw_test_accs"]) == 2
    assert len(summary["q4"]["double_minus_lenet_ci95"]) == 2
    assert summary["q6"]["seeds"] == 1 and "vit_1000_test_acc_mean" in summary["q6"]
    assert "vit_minus_lenet_1000_ci95" in summary["q6"]

    # The committed golden numbers (tests/golden/make.py), then the same profile again in a fresh
    # store, trained by a Dask scheduler's two workers (the first build used a LocalCluster of one):
    # the same numbers, bit for bit.
    golden = json.loads((ROOT / "tests" / "golden" / "smoke_summary.json").read_text())
    diff = cases.differences(golden, cases.numbers(summary))
    assert not diff, "the smoke report differs from tests/golden/smoke_summary.json:\n" + "\n".join(diff)
    _, figures2, _ = _build_smoke(tmp_path / "second", tmp_path / "runs2", "--cluster", dask_cluster.address)
    again = json.loads((figures2 / "summary.json").read_text())
    diff = cases.differences(golden, cases.numbers(again))
    assert not diff, "on the cluster the smoke report differs from tests/golden/smoke_summary.json:\n" + "\n".join(diff)
    for folder in store.iterdir():
        if (folder / "history.csv").exists():
            twin = tmp_path / "runs2" / folder.name / "history.csv"
            first = [line.rsplit(",", 1)[0] for line in (folder / "history.csv").read_text().splitlines()]
            second = [line.rsplit(",", 1)[0] for line in twin.read_text().splitlines()]
            assert first == second, folder.name


@pytest.mark.slow
def test_the_notebook_runs_twice_in_one_kernel_and_an_edited_parameter_takes_effect(tmp_path, monkeypatch):
    """As in Jupyter: Run All, Run All again, then edit the parameters cell and run it and every cell
    after it, all in one kernel (smoke-sized values injected as papermill does)."""
    import nbformat
    from nbclient import NotebookClient
    from papermill.iorw import load_notebook_node
    from papermill.parameterize import parameterize_notebook

    monkeypatch.setenv("MNISTKIT_STORE", str(tmp_path / "runs"))
    nb = parameterize_notebook(load_notebook_node(str(ROOT / "report.ipynb")),
                               {"only": "q1", "device": "cpu", "progress": "none", "train_subset": 1000})
    client = NotebookClient(nb, kernel_name="python3", timeout=600, resources={"metadata": {"path": str(ROOT)}})
    code = [i for i, c in enumerate(nb.cells) if c.cell_type == "code"]
    at = next(i for i, c in enumerate(nb.cells) if "parameters" in c.metadata.get("tags", []))

    probe = nbformat.v4.new_code_cell("report.trained['runs'], report.trained['trained']")
    nb.cells.append(probe)  # after the report's cells: not one of ``code``

    def run(indices) -> tuple[str, str]:
        """The markdown the cells show, and (runs, runs trained) of the execution."""
        for i in indices:
            client.execute_cell(nb.cells[i], i)
        client.execute_cell(probe, len(nb.cells) - 1)
        text = "\n".join(o.data["text/markdown"] for i in indices for o in nb.cells[i].outputs
                         if "text/markdown" in o.get("data", {}))
        return text, probe.outputs[-1].data["text/plain"]

    with client.setup_kernel():
        first, trained_first = run(code)
        second, trained_second = run(code)
        old = 'q1: dict = {"epochs": 2}'
        assert old in nb.cells[at].source
        nb.cells[at].source = nb.cells[at].source.replace(old, 'q1: dict = {"epochs": 1}')
        edited, trained_edited = run([i for i in code if i >= at])
    for text in (first, second):
        assert "after 2 epochs" in text and "## 2. Hyperparameters" not in text and "## Answers" not in text
    assert (trained_first, trained_second, trained_edited) == ("(2, 2)", "(2, 0)", "(2, 2)")
    assert "after 1 epoch (mean" in edited and "after 2 epochs" not in edited


@pytest.mark.slow
@pytest.mark.parametrize("edit, store, named", [
    (lambda cell: cell.replace("train_subset: Optional[int]", "train_subest: Optional[int]"), "runs", "'train_subest'"),
    (lambda cell: cell + "\ntrian_subset = 500\n", "runs", "'trian_subset'"),
    (lambda cell: cell, "/proc/mnistkit-store", "'MNISTKIT_STORE'")], ids=["misspelt", "extra line", "store"])
def test_run_all_stops_at_the_setup_cell_with_one_line_and_nothing_written(tmp_path, monkeypatch, edit, store, named):
    """As JupyterLab runs the notebook (cell after cell in one kernel, no papermill): a name in the parameters
    cell that is not a parameter, or a store that cannot take files, stops the setup cell in one line."""
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError

    store = tmp_path / store if not store.startswith("/") else Path(store)
    monkeypatch.setenv("MNISTKIT_STORE", str(store))
    nb = nbformat.read(ROOT / "report.ipynb", as_version=4)
    at = next(i for i, c in enumerate(nb.cells) if "parameters" in c.metadata.get("tags", []))
    nb.cells[at].source = edit(nb.cells[at].source)
    client = NotebookClient(nb, kernel_name="python3", timeout=600, resources={"metadata": {"path": str(ROOT)}})
    with pytest.raises(CellExecutionError):
        client.execute()
    failed = [c for c in nb.cells if any(o.get("output_type") == "error" for o in c.get("outputs", []))]
    assert len(failed) == 1 and "Report.start" in failed[0].source
    error = next(o for o in failed[0].outputs if o.output_type == "error")
    assert error.ename == "ConfigError" and named in error.evalue
    assert len(error.traceback) == 1 and error.traceback[0].startswith("ConfigError: parameter " + named)
    assert not any(c.get("outputs") for c in nb.cells[nb.cells.index(failed[0]) + 1:])
    if not str(store).startswith("/proc"):
        assert files_under(store) == []


@pytest.mark.slow
def test_ctrl_c_during_a_build_prints_one_line_and_leaves_no_lock_or_empty_folder(tmp_path):
    """A real SIGINT to build.sh's process group, as a terminal's Ctrl-C sends it, once a run is being made."""
    import signal
    import time

    store = tmp_path / "runs"
    log = tmp_path / "stderr.log"
    with open(log, "w") as err:
        build = subprocess.Popen(["bash", "build.sh", "--profile", "smoke", "--no-pdf", "--out", str(tmp_path / "out"),
                                  "--figures", str(tmp_path / "figures")], cwd=ROOT, stdout=subprocess.DEVNULL,
                                 stderr=err, env={**os.environ, "MNISTKIT_STORE": str(store)}, start_new_session=True)
        deadline = time.monotonic() + 300
        while not list(store.glob("*.lock")) and build.poll() is None and time.monotonic() < deadline:
            time.sleep(0.2)
        assert list(store.glob("*.lock")), "no run started"
        before = log.read_text()
        os.killpg(build.pid, signal.SIGINT)
        assert build.wait(timeout=120) == 130
    after = log.read_text()[len(before):]
    lines = [line for line in after.replace("\r", "\n").splitlines() if line.strip()]
    assert lines[-1] == "[build] interrupted: run the same command again to resume; finished runs are kept"
    assert "Traceback" not in after and len([line for line in lines if not re.match(r"^\S+:\s+\d+%", line)]) == 1
    assert not list(store.glob("*.lock"))  # no stale lock
    assert not [d for d in store.iterdir() if d.is_dir() and not any(d.iterdir())]  # no empty run folder
    time.sleep(2)
    mark = f"MNISTKIT_STORE={store}".encode()
    left = []
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            if mark in (proc / "environ").read_bytes().split(b"\0"):
                left.append(proc.name)
        except OSError:
            continue
    assert not left, left  # no kernel or worker outlives it (each carries the store in its environment)


def test_the_layer_table_names_real_modules_and_the_appendix_states_the_cost(tmp_path):
    from mnistkit import report as report_module
    from mnistkit.store import Store

    package = Path(codebase.__file__).parent
    for _, modules, _ in codebase.LAYERS:
        for name in modules:
            assert (package / f"{name}.py").exists() or (package / name / "__init__.py").exists(), name
    params = plan.load_params(overrides={"device": "cpu"})
    trained = {"runs": 145, "trained": 3, "baselines": 10, "baselines_computed": 1, "seconds": 61.0,
               "runs_seconds": 10_123.4}
    text = report_module.Report(params, Store(tmp_path), trained).appendix()
    assert text.startswith("## How the study was computed") and "**10,123\nCPU-seconds**" in text
    assert "The study is 145 training runs and 10 fits of the baseline." in text
    assert "kernels" in text and "trained for this build" not in text and "took 61" not in text  # not a re-render's


def test_a_section_run_again_keeps_its_figure_and_table_numbers(tmp_path, monkeypatch):
    import matplotlib.pyplot as plt

    from mnistkit import report as report_module
    from mnistkit.store import Store

    shown = []
    monkeypatch.setattr(report_module, "display", lambda *a, **k: shown.append(a[0]))
    r = report_module.Report(plan.load_params(overrides={"device": "cpu"}), Store(tmp_path))
    import pandas as pd

    from mnistkit.questions.text import captioned

    table = captioned(pd.DataFrame({"a": ["x"]}), "A table.")
    for _ in range(2):  # a section's cell, run twice
        r.figure(plt.figure(), "one", "alt", "first")
        r.table(table)
        r.figure(plt.figure(), "two", "alt", "second")
    captions = [m.data for m in shown if hasattr(m, "data") and str(m.data).startswith("*")]
    assert captions == ["*Figure 1.* first", f"*Table 1.* {table.attrs['caption']}", "*Figure 2.* second"] * 2


def test_the_registry_is_the_one_list_of_questions():
    """Every question module declares itself once; the parameters, the plan and the notebook follow it."""
    import importlib
    import pkgutil

    from mnistkit import questions

    declared = [m.name for m in pkgutil.iter_modules(questions.__path__)
                if hasattr(importlib.import_module(f"mnistkit.questions.{m.name}"), "QUESTION")]
    names = list(questions.registry())
    numbers = [q.number for q in questions.registry().values()]
    assert sorted(declared) == sorted(names) and numbers == sorted(set(numbers))
    assert parameters()().questions() == names
    assert set(plan.first_stage(plan.load_params(ROOT / "parameters" / "smoke.yaml"))) == set(names)
    shown = {q for c in _notebook()["cells"] for q in re.findall(r'report\.selected\("(\w+)"\)', "".join(c["source"]))}
    assert set(names) <= shown
    with pytest.raises(ConfigError, match="'only'.*q1.*q6"):
        parameters().from_dict({"only": "q9"})
