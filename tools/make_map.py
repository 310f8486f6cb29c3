"""Draw the map of the book (book/map.svg): InfoNCE in the middle, each chapter around it with
the choice it makes. Run from the repository root after changing the chapters:

    python tools/make_map.py
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.patches import FancyBboxPatch  # noqa: E402

from contrastive_tutorial.chapters import CHAPTERS  # noqa: E402

SHORT = {"adversarial": "Adversarial CL", "scaling": "Appendix: large batches"}  # titles that fit a box
COLOURS = {"Vision": "#4C72B0", "Sentence embeddings": "#55A868", "Fine-tuning classifiers": "#C44E52",
           "Clustering": "#8172B2", "Appendix": "#937860"}


def boxes() -> list[dict]:
    """What the map shows, apart from how one matplotlib version renders it: InfoNCE first, then
    each placed chapter (its box's title, the wrapped lines of the choice it makes, position, colour)."""
    middle = CHAPTERS["infonce"]
    found = [{"key": "infonce", "title": middle.title, "lines": textwrap.wrap(middle.changes, 36),
              "xy": (0.50, 0.50), "colour": "#333333"}]
    for chapter in CHAPTERS.values():
        if chapter.map_xy is not None:
            found.append({"key": chapter.key, "title": SHORT.get(chapter.key, chapter.title),
                          "lines": textwrap.wrap(chapter.changes, 34), "xy": chapter.map_xy,
                          "colour": COLOURS[chapter.part]})
    return found


def draw(path: Path) -> None:
    plt.rcParams["svg.fonttype"] = "none"  # text stays text: searchable, small
    plt.rcParams["svg.hashsalt"] = "contrastive-tutorial"  # fixed ids: the same drawing gives the same file
    fig, ax = plt.subplots(figsize=(10, 6.2))
    ax.set(xlim=(0, 1), ylim=(0, 1))
    ax.axis("off")
    middle, *around = boxes()
    centre = middle["xy"]
    ax.add_patch(FancyBboxPatch((0.34, 0.40), 0.32, 0.20, boxstyle="round,pad=0.01", fc="#F2F2F2", ec=middle["colour"],
                                lw=1.5, zorder=2))
    ax.text(centre[0], centre[1] + 0.06, middle["title"], ha="center", va="center", fontsize=11,
            fontweight="bold", zorder=3)
    ax.text(centre[0], centre[1] - 0.03, "\n".join(middle["lines"]), ha="center", va="center", fontsize=9.5,
            zorder=3)
    for box in around:
        (x, y), colour = box["xy"], box["colour"]
        ax.annotate("", xy=(x, y), xytext=centre,
                    arrowprops=dict(arrowstyle="-", color=colour, lw=1.4, alpha=0.7), zorder=1)
        ax.add_patch(FancyBboxPatch((x - 0.135, y - 0.07), 0.27, 0.14, boxstyle="round,pad=0.008",
                                    fc="white", ec=colour, lw=1.6, zorder=2))
        ax.text(x, y + 0.035, box["title"], ha="center", va="center", fontsize=10.5, fontweight="bold", color=colour,
                zorder=3)
        ax.text(x, y - 0.025, "\n".join(box["lines"]), ha="center", va="center", fontsize=8.5,
                color="#222222", zorder=3)
    handles = [plt.Line2D([], [], color=c, lw=3, label=p) for p, c in COLOURS.items()]
    fig.legend(handles=handles, loc="lower center", ncol=len(COLOURS), frameon=False, fontsize=9)
    fig.subplots_adjust(left=0.01, right=0.99, top=0.99, bottom=0.07)
    fig.savefig(path, format="svg", metadata={"Date": None})  # no date: the file changes only with the drawing
    plt.close(fig)


def svg_texts(path: Path) -> list[str]:
    """The text lines of an SVG drawn by :func:`draw`, in drawing order (``svg.fonttype`` none keeps them text)."""
    import xml.etree.ElementTree as ET

    return ["".join(e.itertext()) for e in ET.parse(path).iter("{http://www.w3.org/2000/svg}text")]


def expected_texts() -> list[str]:
    """The lines :func:`draw` writes: each box's title and its lines, then the legend."""
    return [line for box in boxes() for line in (box["title"], *box["lines"])] + list(COLOURS)


if __name__ == "__main__":
    target = Path(__file__).resolve().parents[1] / "book" / "map.svg"
    draw(target)
    print(f"wrote {target}")
