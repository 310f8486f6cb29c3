"""Write the repository URL and version from pyproject.toml into the book, or check that it agrees.

pyproject.toml's ``[project.urls] Repository`` and ``[project] version`` are the one place that
says where the book lives. This script writes them into

- the first code cell of every chapter notebook: on Colab it installs
  ``contrastive-tutorial[offline] @ git+<Repository>@v<version>``, the tagged release the
  chapter was written for (not whatever the default branch holds);
- ``_config.yml``'s ``repository.url``, which the launch buttons (Colab) and the repository
  button of every page use;
- the README's badges and its link to the website (GitHub Pages of that repository).

``python tools/sync_install.py`` rewrites them; ``--check`` exits non-zero naming every place
that disagrees (tests/test_install.py runs it).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

import tomllib

ROOT = Path(__file__).resolve().parents[1]

CELL = '''# On Google Colab, install the book's package first (this cell does nothing elsewhere).
import subprocess, sys
if "google.colab" in sys.modules:
    subprocess.check_call([sys.executable, "-m", "pip", "install", "-q",
                           "contrastive-tutorial[offline] @ git+{url}@v{version}"])'''


def source() -> tuple[str, str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    return project["urls"]["Repository"].rstrip("/"), project["version"]


def install_cell(url: str, version: str) -> str:
    return CELL.format(url=url, version=version)


def _is_install_cell(cell: dict) -> bool:
    return cell["cell_type"] == "code" and "google.colab" in "".join(cell["source"]) and "pip" in "".join(cell["source"])


def sync(check: bool) -> list[str]:
    url, version = source()
    wanted = install_cell(url, version)
    problems = []
    for path in sorted((ROOT / "book").glob("*.ipynb")):
        notebook = json.loads(path.read_text())
        cells = [c for c in notebook["cells"] if _is_install_cell(c)]
        if path.stem == "results":  # the Results page reads records; it installs nothing
            continue
        if len(cells) != 1 or notebook["cells"].index(cells[0]) != next(
                i for i, c in enumerate(notebook["cells"]) if c["cell_type"] == "code"):
            problems.append(f"{path.relative_to(ROOT)}: the first code cell must be the one Colab install cell")
            continue
        if "".join(cells[0]["source"]) != wanted:
            problems.append(f"{path.relative_to(ROOT)}: the install cell does not install {url}@v{version}")
            if not check:
                cells[0]["source"] = wanted.splitlines(True)
                path.write_text(json.dumps(notebook, indent=1, ensure_ascii=False) + "\n")
    config = ROOT / "_config.yml"
    text = config.read_text()
    match = re.search(r"^repository:\n  url: (\S+)$", text, re.M)
    if match is None:
        problems.append("_config.yml: no repository.url")
    elif match.group(1) != url:
        problems.append(f"_config.yml: repository.url is {match.group(1)}, not {url}")
        if not check:
            config.write_text(text[: match.start(1)] + url + text[match.end(1):])
    readme = ROOT / "README.md"
    if readme.exists():
        owner, name = url.removeprefix("https://github.com/").split("/")[:2]
        text = readme.read_text()
        fixed = re.sub(r"https://github\.com/[^/\s]+/[^/\s]+/actions", f"{url}/actions", text)
        fixed = re.sub(r"https://[^./\s]+\.github\.io/[^/\s]+/", f"https://{owner}.github.io/{name}/", fixed)
        if fixed != text:
            problems.append("README.md: the badges or the website link name another repository")
            if not check:
                readme.write_text(fixed)
    return problems


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only report what disagrees")
    args = parser.parse_args()
    problems = sync(args.check)
    for problem in problems:
        print(problem)
    if args.check:
        return 1 if problems else 0
    print("up to date" if not problems else f"fixed {len(problems)} place(s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
