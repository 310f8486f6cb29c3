"""tools/stack_check.py: the pieces of the Colab and minimum-version checks that need no environment.

The checks themselves build environments of several GB and run in CI as their own phases (.ci/run).
"""

from __future__ import annotations

import re
from pathlib import Path

from tool_modules import load

ROOT = Path(__file__).resolve().parents[1]


def _tool():
    return load("stack_check")


def test_colab_constraints_are_plain_pins_without_colab_cuda_build():
    tool = _tool()
    colab = tool.pins(tool.COLAB)
    assert colab["torch"] == "2.11.0" and colab["datasets"] == "4.0.0" and colab["numpy"] == "2.1.3"
    assert not any(name.startswith(("nvidia-", "cuda-", "cupy-")) for name in colab)  # Colab's cu128 toolchain
    assert not any("+" in version for version in colab.values())  # PyPI's torch has no local tag
    assert tool._name("scikit_learn") == tool._name("Scikit-Learn>=1.3") == "scikit-learn"


def test_readme_quotes_the_versions_of_the_constraints_file():
    tool = _tool()
    colab = tool.pins(tool.COLAB)
    readme = (ROOT / "README.md").read_text()
    section = readme[readme.index("*Colab's GPU runtime*"):readme.index("*The declared minimums*")]
    quoted = re.findall(r"([a-z][a-z_-]+) (\d[\w.]*\d)", section.replace("\n", " "))
    names = {tool._name(n) for n, _ in quoted}
    assert {"torch", "transformers", "datasets", "numpy", "scipy", "fsspec", "huggingface-hub"} <= names
    for name, version in quoted:
        if tool._name(name) in colab:
            assert colab[tool._name(name)].startswith(version), (name, version, colab[tool._name(name)])


def test_every_dependency_has_a_floor_and_the_readme_quotes_them():
    tool = _tool()
    project = tool._project()
    declared = tool.floors(project["dependencies"] + project["optional-dependencies"]["offline"])
    assert set(declared) == {tool._name(r) for r in project["dependencies"] + project["optional-dependencies"]["offline"]}
    assert declared["torch"] == "2.4" and declared["tqdm"] == "4.62.1"
    readme = (ROOT / "README.md").read_text()
    section = readme[readme.index("*The declared minimums*"):].split("\n\n")[0].replace("\n", " ")
    oldest = re.search(r"3\.\d+", project["requires-python"]).group(0)
    assert f"Python {oldest}" in section
    for name, version in re.findall(r"([a-z][a-z-]+) (\d[\d.]*\d)", section):
        if name in declared:
            assert declared[name] == version, (name, version, declared[name])


def test_compare_names_changed_removed_and_added_packages():
    tool = _tool()
    before = {"numpy": "2.1.3", "scipy": "1.16.3", "torch": "2.11.0"}
    after = {"numpy": "1.26.4", "torch": "2.11.0", "gensim": "4.4.0"}
    changed, added = tool.compare(before, after)
    assert changed == {"numpy": ("2.1.3", "1.26.4"), "scipy": ("1.16.3", None)}
    assert added == ["gensim==4.4.0"]
    assert tool.compare(before, dict(before)) == ({}, [])


def test_the_install_cell_is_run_with_the_checkout_in_place_of_the_tag():
    tool = _tool()
    cell = tool.install_cell()
    assert "google.colab" in cell and "pip" in cell
    tag = tool.release(cell)
    assert tag.endswith("@v" + __import__("contrastive_tutorial").__version__)
    assert ROOT.as_uri() in cell.replace(tag, ROOT.as_uri())


def test_the_subset_names_existing_test_files():
    tool = _tool()
    assert all((ROOT / path).is_file() for path in tool.SUBSET)



def test_the_smoke_chapter_is_a_chapter_whose_colab_profile_the_smoke_suite_covers():
    import test_smoke

    tool = _tool()
    ids = {param.id for param in test_smoke._runs()}
    assert f"{tool.SMOKE_CHAPTER}-colab" in ids or f"{tool.SMOKE_CHAPTER}-full=colab" in ids
    assert (ROOT / "book" / f"{tool.SMOKE_CHAPTER}.ipynb").is_file()
