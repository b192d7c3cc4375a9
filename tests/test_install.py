"""A newcomer's path: the package's metadata, the lock, where files go, build.sh's pieces, the kernel."""

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from conftest import ROOT
from mnistkit import paths

PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def pins(lines) -> dict:
    """``{normalized name: version}`` of every ``name==version`` line."""
    found = (re.match(r"^([A-Za-z0-9_.\-]+)==([^\s;\\]+)", line.strip()) for line in lines)
    return {re.sub(r"[-_.]+", "-", m[1]).lower(): m[2] for m in found if m}


def test_pyproject_states_python_a_command_and_keeps_tests_and_trackers_optional():
    assert PROJECT["requires-python"] == ">=3.11"
    assert PROJECT["scripts"]["mnistkit"] == "mnistkit.__main__:console"
    runtime = pins(PROJECT["dependencies"])
    assert "pytest" not in runtime and "wandb" not in runtime and "tensorboard" not in runtime
    for imported in ("torch", "numpy", "scipy", "joblib", "threadpoolctl", "scikit-learn", "pyyaml", "filelock"):
        assert imported in runtime, imported
    extras = PROJECT["optional-dependencies"]
    assert "pytest" in pins(extras["test"]) and set(pins(extras["wandb"])) == {"wandb"}
    assert set(pins(extras["tensorboard"])) == {"tensorboard"}
    entry = PROJECT["entry-points"]["papermill.engine"]["mnistkit"]
    assert entry == "mnistkit.kernel:Engine"


def test_an_installed_package_holds_every_subpackage():
    listed = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]
    found = [".".join(p.parent.relative_to(ROOT).parts) for p in sorted((ROOT / "mnistkit").rglob("__init__.py"))]
    assert sorted(listed) == sorted(found)


def test_requirements_txt_pins_what_pyproject_pins():
    assert pins((ROOT / "requirements.txt").read_text().splitlines()) == pins(PROJECT["dependencies"])


def test_the_lock_pins_every_requirement_at_its_version_with_hashes():
    text = (ROOT / "requirements.lock").read_text()
    locked = pins(text.splitlines())
    wanted = {**pins(PROJECT["dependencies"]), **pins(PROJECT["optional-dependencies"]["test"])}
    assert {name: locked.get(name) for name in wanted} == wanted
    assert len(locked) > 100  # the transitive packages too
    entries = {}  # each pin line and the indented lines after it
    for line in text.splitlines():
        if re.match(r"^[A-Za-z0-9]", line):
            name = line.split("==")[0]
            entries[name] = ""
        elif line.startswith(" ") and entries:
            entries[name] += line
    assert len(entries) == len(locked)
    assert [name for name, rest in entries.items() if "--hash=sha256:" not in rest] == []


def test_the_installed_versions_are_the_locked_ones():
    """The environment the tests run in is the one the lock describes (for what both hold)."""
    from importlib import metadata

    locked = pins((ROOT / "requirements.lock").read_text().splitlines())
    for name in ("torch", "numpy", "pandas", "scikit-learn", "papermill", "ipykernel", "pytest"):
        assert metadata.version(name) == locked[name], name


def test_report_notebook_is_committed_without_outputs_and_keeps_its_parameters_cell():
    notebook = json.loads((ROOT / "report.ipynb").read_text())
    code = [c for c in notebook["cells"] if c["cell_type"] == "code"]
    assert code and all(c["outputs"] == [] and c["execution_count"] is None for c in code)
    tagged = [c for c in code if "parameters" in c["metadata"].get("tags", [])]
    assert len(tagged) == 1
    source = "".join(tagged[0]["source"])
    for name in ("profile", "only", "jobs", "device", "progress", "tracker"):
        assert re.search(rf"^{name}: [\w\[\]]+ = ", source, re.M), name
    assert "papermill" not in notebook["metadata"]


@pytest.mark.skipif(shutil.which("git") is None or not (ROOT / ".git").exists(), reason="needs a git checkout")
def test_gitignore_keeps_papermill_output_and_checkpoints_out_but_not_the_report():
    def ignored(path):
        return subprocess.run(["git", "check-ignore", "-q", path], cwd=ROOT).returncode == 0

    assert ignored("out.ipynb") and ignored(".ipynb_checkpoints/report-checkpoint.ipynb")
    assert ignored("build/report.ipynb") and ignored("mnistkit.egg-info/PKG-INFO")
    assert not ignored("report.ipynb") and not ignored("tests/test_install.py")


def test_store_and_data_resolve_to_the_checkout_from_any_folder(monkeypatch, tmp_path):
    monkeypatch.delenv("MNISTKIT_STORE", raising=False)
    monkeypatch.delenv("MNISTKIT_DATA", raising=False)
    monkeypatch.chdir(tmp_path)
    assert paths.checkout() == ROOT
    assert paths.store_root() == ROOT / "build" / "runs"
    assert paths.data_root() == (ROOT / "build" / "data").resolve()
    monkeypatch.setenv("MNISTKIT_STORE", "runs-here")
    assert paths.store_root() == tmp_path / "runs-here"


def test_an_installed_package_keeps_its_files_in_the_user_cache(monkeypatch, tmp_path):
    monkeypatch.delenv("MNISTKIT_STORE", raising=False)
    monkeypatch.delenv("MNISTKIT_DATA", raising=False)
    monkeypatch.setattr(paths, "checkout", lambda: None)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    assert paths.store_root() == tmp_path / "cache" / "mnistkit" / "runs"
    assert paths.data_root() == tmp_path / "cache" / "mnistkit" / "data"


def test_check_writable_makes_the_folder_and_leaves_nothing_in_it(tmp_path):
    folder = paths.check_writable(tmp_path / "a" / "b", "store")
    assert folder.is_dir() and list(folder.iterdir()) == []


# ---------------------------------------------------------------- build.sh


def bash(script: str, path: str | None = None) -> subprocess.CompletedProcess:
    """Source build.sh (which then only defines its functions) and run ``script``, with PATH set to ``path``."""
    setup = f"export PATH={path}; " if path is not None else ""
    return subprocess.run(["bash", "-c", f"source ./build.sh; {setup}{script}"], cwd=ROOT,
                          capture_output=True, text=True, timeout=60)


def test_build_sh_parses_and_checks_for_bash_4():
    assert subprocess.run(["bash", "-n", "build.sh"], cwd=ROOT).returncode == 0
    head = (ROOT / "build.sh").read_text().split("set -euo pipefail")[0]
    assert "BASH_VERSINFO[0]" in head and "-lt 4" in head  # checked before anything bash-4 runs


@pytest.mark.slow
def test_build_sh_finds_no_chromium_without_one_and_takes_chrome_from_its_variable(tmp_path):
    assert bash('echo "[$(chromium_bin)]"', path=str(tmp_path)).stdout.strip() == "[]"
    fake = tmp_path / "google-chrome"
    fake.write_text("#!/bin/sh\n")
    fake.chmod(0o755)
    assert bash('echo "[$(chromium_bin)]"', path=str(tmp_path)).stdout.strip() == f"[{fake}]"
    assert bash('CHROME=/opt/x/chrome; echo "[$(chromium_bin)]"', path=str(tmp_path)).stdout.strip() == "[/opt/x/chrome]"


@pytest.mark.slow
def test_build_sh_hashes_with_shasum_where_there_is_no_sha256sum(tmp_path):
    shasum = tmp_path / "shasum"  # macOS's: shasum -a 256 prints "HASH  -"
    shasum.write_text(f"#!{sys.executable}\nimport hashlib, sys\n"
                      "assert sys.argv[1:] == ['-a', '256']\n"
                      "print(hashlib.sha256(sys.stdin.buffer.read()).hexdigest() + '  -')\n")
    shasum.chmod(0o755)
    (tmp_path / "cut").symlink_to(shutil.which("cut"))
    result = bash("printf abc | sha256", path=str(tmp_path))
    assert result.stdout.strip() == hashlib.sha256(b"abc").hexdigest(), result.stderr


def fake_python(folder):
    """A 'python' in ``folder`` that writes its arguments to ``folder/args`` and does nothing else."""
    fake = folder / "python"
    fake.write_text(f"#!/bin/sh\necho \"$@\" > {folder}/args\n")
    fake.chmod(0o755)
    return fake


@pytest.mark.slow
def test_build_sh_test_runs_pytest_without_chromium_on_path(tmp_path):
    """``./build.sh test`` with setup done (its stamp matches) and no browser anywhere: pytest runs."""
    script = f"setup_python() {{ :; }}; setup_kernel() {{ :; }}; PY={fake_python(tmp_path)}; main test -k smoke"
    result = bash(script, path=str(tmp_path))
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "args").read_text().split() == ["-m", "pytest", "-k", "smoke"]


def test_build_sh_lab_opens_the_report_in_jupyterlab_after_the_set_up(tmp_path):
    """``./build.sh lab``: set-up, kernel, then JupyterLab on report.ipynb with the arguments given."""
    script = (f"setup_python() {{ echo setup; }}; setup_kernel() {{ echo kernel; }}; PY={fake_python(tmp_path)}; "
              "main lab --no-browser")
    result = bash(script, path=str(tmp_path))
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["setup", "kernel"]
    assert (tmp_path / "args").read_text().split() == ["-m", "jupyter", "lab", "report.ipynb", "--no-browser"]
    installed = subprocess.run([sys.executable, "-m", "jupyter", "lab", "--version"], capture_output=True, text=True)
    assert installed.returncode == 0 and installed.stdout.strip()  # JupyterLab is in the pinned packages


@pytest.mark.slow
def test_build_sh_skips_installing_when_the_stamp_matches(tmp_path):
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    (venv / "bin" / "python").symlink_to(sys.executable)
    script = (f"VENV={venv}; PY={venv}/bin/python; quiet_pip() {{ echo INSTALL \"$@\"; }}; "
              "setup_python; echo; setup_python")
    result = bash(script)
    first, second = result.stdout.split("\n\n", 1)
    assert "INSTALL install -q --require-hashes --no-deps -r requirements.lock" in first
    assert "INSTALL install -q --no-deps -e ." in first
    assert "INSTALL" not in second, second
    assert (venv / ".requirements.sha256").read_text().strip()


# ---------------------------------------------------------------- the kernel


@pytest.mark.slow
def test_the_mnistkit_engine_runs_the_kernel_over_ipc_without_the_tcp_warning(tmp_path, capfd, monkeypatch):
    import papermill
    from jupyter_core.paths import jupyter_runtime_dir
    from papermill.engines import papermill_engines

    from mnistkit.kernel import Engine

    papermill_engines.register("mnistkit", Engine)
    notebook = {"cells": [{"cell_type": "code", "id": "p", "metadata": {"tags": ["parameters"]}, "outputs": [],
                           "execution_count": None, "source": "x = 1"},
                          {"cell_type": "code", "id": "c", "metadata": {}, "outputs": [], "execution_count": None,
                           "source": "from ipykernel.kernelapp import IPKernelApp\napp = IPKernelApp.instance()\n"
                                     "print(app.transport, x)\nprint(app.ip)"}],
                "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}},
                "nbformat": 4, "nbformat_minor": 5}
    (tmp_path / "in.ipynb").write_text(json.dumps(notebook))
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    out = papermill.execute_notebook(str(tmp_path / "in.ipynb"), str(tmp_path / "out.ipynb"), parameters={"x": 7},
                                     kernel_name="python3", engine_name="mnistkit", progress_bar=False)
    transport, ip = out["cells"][-1]["outputs"][0]["text"].splitlines()
    assert transport == "ipc 7"
    assert "without encryption" not in capfd.readouterr().err
    # the sockets lived in Jupyter's runtime folder and are gone; none was made in the working folder
    assert ip.startswith(jupyter_runtime_dir()) and not list(Path(jupyter_runtime_dir()).glob(Path(ip).name + "*"))
    assert not list(work.iterdir())


def _clone(root: Path) -> Path:
    """A checkout's stand-in: build.sh and a .venv of its own whose packages are this one's (a .pth file)."""
    root.mkdir()
    shutil.copy(ROOT / "build.sh", root / "build.sh")
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(root / ".venv")], check=True)
    site = next((root / ".venv" / "lib").glob("python3*")) / "site-packages"
    (site / "checkout.pth").write_text("\n".join(p for p in sys.path if p.endswith("site-packages")) + "\n")
    return root / ".venv" / "bin" / "python"


def test_each_checkout_has_its_own_kernel_and_deleting_one_breaks_nothing_in_the_other(tmp_path):
    """Two checkouts each install the mnistkit kernel into their own .venv (nothing into the account's
    folder); with one deleted, the other's Jupyter still finds its own kernel and starts it."""
    env = {**os.environ, "HOME": str(tmp_path / "home"), "JUPYTER_DATA_DIR": str(tmp_path / "home" / "jupyter")}
    pythons = [_clone(tmp_path / name) for name in ("a", "b")]
    for python in pythons:
        subprocess.run(["bash", "-c", f"source build.sh; PY={python}; setup_kernel"], cwd=python.parents[2], env=env,
                       check=True, capture_output=True, text=True)
    assert not (tmp_path / "home" / "jupyter" / "kernels").exists()  # nothing for the whole account
    find = ("import json, sys; from jupyter_client.kernelspec import KernelSpecManager as M; "
            "s = M().get_kernel_spec('mnistkit'); print(json.dumps([s.resource_dir, s.argv[0]]))")
    for python in pythons:
        folder, argv0 = json.loads(subprocess.run([str(python), "-c", find], env=env, check=True,
                                                  capture_output=True, text=True).stdout)
        assert Path(folder).is_relative_to(python.parents[1]) and Path(argv0) == python
    shutil.rmtree(tmp_path / "a")
    start = ("from jupyter_client.manager import start_new_kernel; km, kc = start_new_kernel(kernel_name='mnistkit'); "
             "r = kc.execute_interactive('import sys; print(sys.prefix)', timeout=60); km.shutdown_kernel(); "
             "print('ok' if r['content']['status'] == 'ok' else 'failed')")
    out = subprocess.run([str(pythons[1]), "-c", start], env=env, capture_output=True, text=True, timeout=120)
    assert out.stdout.strip().splitlines()[-1] == "ok", out.stderr[-2000:]
    assert str(pythons[1].parents[1]) in out.stdout  # the kernel runs in the remaining checkout's own .venv
