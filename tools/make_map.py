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


def draw(path: Path) -> None:
    plt.rcParams["svg.fonttype"] = "none"  # text stays text: searchable, small
    plt.rcParams["svg.hashsalt"] = "contrastive-tutorial"  # fixed ids: the same drawing gives the same file
    fig, ax = plt.subplots(figsize=(10, 6.2))
    ax.set(xlim=(0, 1), ylim=(0, 1))
    ax.axis("off")
    centre = (0.50, 0.50)
    ax.add_patch(FancyBboxPatch((0.34, 0.40), 0.32, 0.20, boxstyle="round,pad=0.01", fc="#F2F2F2", ec="#333333",
                                lw=1.5, zorder=2))
    middle = CHAPTERS["infonce"]
    ax.text(centre[0], centre[1] + 0.06, middle.title, ha="center", va="center", fontsize=11,
            fontweight="bold", zorder=3)
    ax.text(centre[0], centre[1] - 0.03, textwrap.fill(middle.changes, 36), ha="center", va="center", fontsize=9.5,
            zorder=3)
    for chapter in CHAPTERS.values():
        if chapter.map_xy is None:
            continue
        (x, y), colour = chapter.map_xy, COLOURS[chapter.part]
        title = SHORT.get(chapter.key, chapter.title)
        ax.annotate("", xy=(x, y), xytext=centre,
                    arrowprops=dict(arrowstyle="-", color=colour, lw=1.4, alpha=0.7), zorder=1)
        ax.add_patch(FancyBboxPatch((x - 0.135, y - 0.07), 0.27, 0.14, boxstyle="round,pad=0.008",
                                    fc="white", ec=colour, lw=1.6, zorder=2))
        ax.text(x, y + 0.035, title, ha="center", va="center", fontsize=10.5, fontweight="bold", color=colour, zorder=3)
        ax.text(x, y - 0.025, textwrap.fill(chapter.changes, 34), ha="center", va="center", fontsize=8.5,
                color="#222222", zorder=3)
    handles = [plt.Line2D([], [], color=c, lw=3, label=p) for p, c in COLOURS.items()]
    fig.legend(handles=handles, loc="lower center", ncol=len(COLOURS), frameon=False, fontsize=9)
    fig.subplots_adjust(left=0.01, right=0.99, top=0.99, bottom=0.07)
    fig.savefig(path, format="svg", metadata={"Date": None})  # no date: the file changes only with the drawing
    plt.close(fig)


if __name__ == "__main__":
    target = Path(__file__).resolve().parents[1] / "book" / "map.svg"
    draw(target)
    print(f"wrote {target}")
