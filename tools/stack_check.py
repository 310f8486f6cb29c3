"""Test the package on another software stack: Colab's preinstalled one, or the oldest it declares.

    python tools/stack_check.py colab       # Python 3.13 with Colab's versions (stacks/colab-gpu.txt)
    python tools/stack_check.py minimums    # the oldest Python allowed, every dependency at its floor

Each builds a fresh virtual environment under ``_build/stacks/<name>`` with uv (it installs in a
fraction of pip's time, and its ``--resolution lowest-direct`` picks the declared floors), then:

``colab``
    1. installs the packages of Colab's GPU runtime that the book and its tests use, at Colab's
       versions, as a Colab runtime has them before any cell runs;
    2. runs the chapters' install cell itself (the first code cell of ``book/infonce.ipynb``), with
       the local checkout in place of the tagged release it names;
    3. fails if that changed any package Colab had (a changed NumPy or SciPy forces a restart of
       the runtime, and a downgraded one can break Colab's own tools), and lists what it added;
    4. runs the unit tests (``--subset``: the ones about data, encoders, training and the recipes),
       and executes the InfoNCE chapter in the quick profile and the PromptBERT chapter under
       ``CT_PROFILE=colab CT_SMOKE=1``.

``minimums``
    installs the package with every direct dependency at the lowest version it allows, checks that
    each installed version is the declared floor, and runs the unit tests (``--subset``: the ones
    about data, encoders, training and the recipes).

PyTorch comes from PyPI (a CUDA build; it runs on a CPU) because PyTorch's CPU index may be out of
reach; uv's cache keeps the download for the next run. ``STACK_PYTHON=/path/to/python`` picks the
interpreter; otherwise the script looks for ``python3.X`` on the PATH and in pyenv's versions.
Environment variables (``CT_DATA_DIR``, the offline switches) pass through to the tests.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
COLAB = ROOT / "stacks" / "colab-gpu.txt"
COLAB_PYTHON = "3.13"
# Packages a Colab runtime already has that the book's tests and notebook runs use besides the
# package's own dependencies.
TEST_TOOLS = ("pytest", "pyyaml", "nbclient", "nbformat", "ipykernel")
# The subset CI runs on both stacks (--subset): data, encoders, training and the recipes, where the
# stacks' versions of datasets, fsspec, transformers and torch meet the package's code.
SUBSET = ("tests/test_data.py", "tests/test_core.py", "tests/test_train.py", "tests/test_losses.py",
          "tests/test_text.py", "tests/test_views.py", "tests/test_cli.py", "tests/test_scl_adversarial.py",
          "tests/test_sccl.py", "tests/test_promptbert.py", "tests/test_bad_input.py", "tests/test_pretrain.py")
SMOKE_CHAPTER = "promptbert"  # a text chapter (BERT through transformers and datasets), about a minute in smoke mode
STEPS = ("install", "test")


def _project() -> dict:
    import tomllib

    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def _name(requirement: str) -> str:
    """The normalised distribution name of a requirement string (``"scikit-learn>=1.3"`` -> ``scikit-learn``)."""
    return re.sub(r"[-_.]+", "-", re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", requirement).group(1)).lower()


def pins(path: Path) -> dict[str, str]:
    """``{name: version}`` of a constraints file's ``name==version`` lines."""
    found = {}
    for line in path.read_text().splitlines():
        if "==" in line and not line.lstrip().startswith("#"):
            name, version = line.split("==", 1)
            found[_name(name)] = version.strip()
    return found


def floors(requirements: list[str]) -> dict[str, str]:
    """``{name: floor}`` for each requirement with a ``>=`` bound (the package's declared minimums)."""
    found = {}
    for requirement in requirements:
        match = re.search(r">=\s*([0-9][^,;\s]*)", requirement)
        if match and "[" not in requirement.split(">=")[0]:
            found[_name(requirement)] = match.group(1)
    return found


def _works(python: str) -> bool:
    try:
        return subprocess.run([python, "-c", "import sys, venv"], capture_output=True, timeout=60).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def find_python(version: str) -> str:
    """An interpreter of ``version`` (``"3.13"``): $STACK_PYTHON, ``python3.13`` on the PATH, or pyenv's."""
    candidates = [os.environ.get("STACK_PYTHON", ""), shutil.which(f"python{version}") or ""]
    pyenv_root = os.environ.get("PYENV_ROOT", str(Path.home() / ".pyenv"))
    candidates += sorted(glob.glob(f"{pyenv_root}/versions/{version}.*/bin/python{version}"), reverse=True)
    for python in filter(None, candidates):
        if _works(python):
            return python
    raise SystemExit(f"stack_check: no Python {version} found (set STACK_PYTHON, or e.g. `pyenv install {version}`)")


def _uv() -> str:
    """The uv beside this interpreter (the dev extra installs it), else the one on the PATH."""
    beside = Path(sys.executable).parent / "uv"
    uv = str(beside) if beside.exists() else shutil.which("uv")
    if uv is None:
        raise SystemExit("stack_check: uv is needed (`pip install uv`; the dev extra installs it)")
    return uv


def _run(command: list[str], show: str | None = None, **kwargs) -> None:
    print("$", show or " ".join(command), flush=True)
    subprocess.run(command, check=True, **kwargs)


def _environment(venv: Path) -> dict[str, str]:
    """The current environment with ``venv`` activated (kernels started by name find its python)."""
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH")}
    env.update(VIRTUAL_ENV=str(venv), PATH=f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}",
               UV_PYTHON_DOWNLOADS="never")
    return env


def new_venv(venv: Path, python: str) -> Path:
    shutil.rmtree(venv, ignore_errors=True)
    _run([_uv(), "venv", "--seed", "-q", "--python", python, str(venv)])
    return venv / "bin" / "python"


def installed(python: Path) -> dict[str, str]:
    """``{name: version}`` of every distribution in the environment of ``python``."""
    listing = subprocess.run([_uv(), "pip", "list", "--python", str(python), "--format", "json"],
                             check=True, capture_output=True, text=True).stdout
    return {_name(item["name"]): item["version"] for item in json.loads(listing)}


def install_cell() -> str:
    """The chapters' install cell (the first code cell of the InfoNCE chapter) as it is shipped."""
    notebook = json.loads((ROOT / "book" / "infonce.ipynb").read_text())
    return "".join(next(c for c in notebook["cells"] if c["cell_type"] == "code")["source"])


def release(cell: str) -> str:
    """The ``git+<repository>@v<version>`` the install cell installs."""
    tag = re.search(r"git\+\S+?@v[0-9][^\"'\s]*", cell)
    if tag is None:
        raise SystemExit("stack_check: the install cell names no git+...@v<version> release")
    return tag.group(0)


def run_install_cell(python: Path, env: dict[str, str]) -> None:
    """Execute the install cell in ``python`` as Colab would, installing the checkout instead of the tag."""
    cell = install_cell()
    tag = release(cell)
    pretend = "import sys, types\nsys.modules['google.colab'] = types.ModuleType('google.colab')\n"
    _run([str(python), "-c", pretend + cell.replace(tag, ROOT.as_uri())], env=env, cwd=ROOT / "book",
         show=f"(the install cell in {python}, {tag} -> {ROOT.as_uri()})")


def compare(before: dict[str, str], after: dict[str, str]) -> tuple[dict[str, tuple[str, str | None]], list[str]]:
    """What an install changed (``{name: (before, after or None)}``) and what it added."""
    changed = {n: (v, after.get(n)) for n, v in before.items() if after.get(n) != v}
    return changed, sorted(f"{n}=={after[n]}" for n in set(after) - set(before))


def unit_tests(python: Path, env: dict[str, str], paths: tuple[str, ...] = ("tests",)) -> None:
    """The unit tests, without the smoke suite's chapter runs (``make test`` runs those)."""
    timings = Path(env["VIRTUAL_ENV"]).parent / "pytest.json"  # not make test's _build/timings/pytest.json
    _run([str(python), "-m", "pytest", *paths, "-q", "-p", "no:cacheprovider", "--durations=5",
          "-k", "not test_chapter_runs_in_smoke_mode"], env={**env, "CT_PYTEST_TIMINGS": str(timings)}, cwd=ROOT)


def execute_chapter(python: Path, env: dict[str, str], name: str, out: Path, smoke: bool = False) -> None:
    """Run ``book/<name>.ipynb`` to its end in a kernel of ``python``; a raising cell fails the check.

    The quick profile on the offline data, or with ``smoke`` the colab profile in smoke mode (as
    tests/test_smoke.py runs it: random-weight models of the real sizes, hub-schema stand-ins)."""
    script = ("import sys, nbclient, nbformat\n"
              "nb = nbformat.read(sys.argv[1], as_version=4)\n"
              "nb.cells.append(nbformat.v4.new_code_cell('import sys; print(sys.prefix)'))\n"
              "nbclient.NotebookClient(nb, timeout=900, kernel_name='python3',"
              " resources={'metadata': {'path': sys.argv[2]}}).execute()\n"
              "nbformat.write(nb, sys.argv[3])\n"
              "kernel = nb.cells[-1].outputs[0]['text'].strip()\n"
              "assert kernel == sys.prefix, f'the kernel ran in {kernel}, not in {sys.prefix}'\n")
    out.mkdir(parents=True, exist_ok=True)
    env = {**env, "CT_PROFILE": "quick", "CT_PROGRESS": "0", "CT_RUNS_DIR": str(out / "runs" / name)}
    if smoke:
        env = {k: v for k, v in env.items() if k != "CT_DATA_DIR"}
        env.update(CT_PROFILE="colab", CT_SMOKE="1", CT_SMOKE_CACHE=str(out / "smoke-models"), HF_HUB_OFFLINE="1",
                   HF_DATASETS_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
    start = time.perf_counter()
    _run([str(python), "-c", script, str(ROOT / "book" / f"{name}.ipynb"), str(ROOT / "book"),
          str(out / f"{name}{'-smoke' if smoke else ''}.ipynb")], env=env, cwd=ROOT,
         show=f"(book/{name}.ipynb in {python} under CT_PROFILE={env['CT_PROFILE']}{' CT_SMOKE=1' if smoke else ''})")
    print(f"book/{name}.ipynb ran in {time.perf_counter() - start:.0f} s", flush=True)


def colab(venv: Path, steps: tuple[str, ...] = STEPS, subset: bool = False) -> None:
    python, env = venv / "bin" / "python", _environment(venv)
    if "install" in steps:
        colab_install(venv)
    if "test" in steps:
        unit_tests(python, env, SUBSET if subset else ("tests",))
        execute_chapter(python, env, "infonce", venv.parent / "executed")
        execute_chapter(python, env, SMOKE_CHAPTER, venv.parent / "executed", smoke=True)


def colab_install(venv: Path) -> None:
    """Steps 1-3: Colab's runtime, the install cell, and the check that it changed none of Colab's packages."""
    python = new_venv(venv, find_python(COLAB_PYTHON))
    env = _environment(venv)
    colab_versions = pins(COLAB)
    wanted = ["pip", "setuptools", "wheel", *map(_name, _project()["dependencies"] + list(TEST_TOOLS))]
    preinstalled = [n for n in dict.fromkeys(wanted) if n in colab_versions]
    print(f"Colab's runtime ({COLAB.name}): {', '.join(f'{n}=={colab_versions[n]}' for n in preinstalled)}")
    _run([_uv(), "pip", "install", "-q", "--python", str(python), "-c", str(COLAB), *preinstalled], env=env)
    before = installed(python)
    wrong = {n: (before.get(n), v) for n, v in colab_versions.items() if n in before and before[n] != v}
    if wrong:
        raise SystemExit(f"stack_check: the runtime differs from Colab's list: {wrong}")
    run_install_cell(python, env)
    changed, added = compare(before, installed(python))
    print(f"The install cell added {len(added)} packages: {', '.join(added)}")
    if changed:
        raise SystemExit("stack_check: the install cell changed Colab's packages: "
                         + ", ".join(f"{n} {a} -> {b or 'removed'}" for n, (a, b) in changed.items()))
    print("The install cell changed none of Colab's packages.")


def minimums(venv: Path, steps: tuple[str, ...] = STEPS, subset: bool = False) -> None:
    python, env = venv / "bin" / "python", _environment(venv)
    if "install" in steps:
        minimums_install(venv)
    if "test" in steps:
        unit_tests(python, env, SUBSET if subset else ("tests",))


def minimums_install(venv: Path) -> None:
    """The package with each direct dependency at its lowest allowed version, checked against the floors."""
    project = _project()
    version = re.search(r">=\s*(3\.\d+)", project["requires-python"]).group(1)
    python = new_venv(venv, find_python(version))
    env = _environment(venv)
    _run([_uv(), "pip", "install", "-q", "--python", str(python), "--resolution", "lowest-direct", "--only-binary", ":all:",
          "-e", f"{ROOT}[offline]"], env=env)
    _run([_uv(), "pip", "install", "-q", "--python", str(python), *TEST_TOOLS], env=env)
    have = installed(python)
    declared = floors(project["dependencies"] + project["optional-dependencies"]["offline"])
    from packaging.version import Version

    above = {n: (f, have.get(n)) for n, f in declared.items()
             if have.get(n) is None or Version(have[n].split("+")[0]) != Version(f)}
    if above:
        raise SystemExit(f"stack_check: not at the declared floors (name: (floor, installed)): {above}")
    print(f"Python {version} with the declared floors: " + ", ".join(f"{n}=={have[n]}" for n in declared))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("stack", choices=("colab", "minimums"))
    parser.add_argument("--venv", type=Path, help="where to build the environment (default _build/stacks/<stack>/venv)")
    parser.add_argument("--subset", action="store_true", help="only the unit tests about data, encoders, training and the recipes")
    parser.add_argument("--only", choices=STEPS, help="only build the environment (install) or only test in it")
    args = parser.parse_args(argv)
    venv = (args.venv or ROOT / "_build" / "stacks" / args.stack / "venv").resolve()
    steps = (args.only,) if args.only else STEPS
    start = time.perf_counter()
    colab(venv, steps, args.subset) if args.stack == "colab" else minimums(venv, steps, args.subset)
    print(f"stack_check {args.stack} ({' and '.join(steps)}): passed in {time.perf_counter() - start:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
