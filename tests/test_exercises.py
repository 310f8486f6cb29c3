"""Exercise checkers: they accept the right answer and name each common mistake."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from contrastive_tutorial import exercises, losses
from contrastive_tutorial.exercises import ExerciseError


def _nt_xent_by_loops(z1, z2, tau):
    """NT-Xent written from SimCLR's equation with loops (an independent correct answer)."""
    z = F.normalize(torch.cat([z1, z2]), dim=1)
    n, total = len(z1), 0.0
    for i in range(2 * n):
        j = (i + n) % (2 * n)
        denominator = sum(torch.exp(z[i] @ z[k] / tau) for k in range(2 * n) if k != i)
        total = total - torch.log(torch.exp(z[i] @ z[j] / tau) / denominator)
    return total / (2 * n)


def test_right_answers_pass(capsys):
    assert exercises.check_nt_xent(_nt_xent_by_loops)
    assert "Correct" in capsys.readouterr().out
    assert exercises.check_nt_xent(losses.nt_xent)
    assert exercises.check_supcon(losses.supcon_loss)
    assert exercises.check_target_distribution(losses.target_distribution)
    assert exercises.check_fgm(lambda g, e: e * g / g.flatten(1).norm(dim=1).view(-1, 1, 1))


@pytest.mark.parametrize("wrong,hint", [
    (lambda a, b, t: exercises._nt_xent_variant(a, b, t, normalize=False), "not normalised"),
    (lambda a, b, t: exercises._nt_xent_variant(a, b, t, mask_self=False), "mask the diagonal"),
    (lambda a, b, t: exercises._nt_xent_variant(a, b, t, both=False), "all 2N views"),
    (lambda a, b, t: losses.nt_xent(a, b, 1 / t), "multiplied by the temperature"),
    (lambda a, b, t: losses.nt_xent(a, b, t) * 2 * len(a), "take the mean"),
    (lambda a, b, t: losses.nt_xent(a, b, t).reshape(1), "shape"),
    (lambda a, b, t: 1.0, "torch.Tensor"),
    (lambda a, b, t: losses.nt_xent(a, b, t) + 0.1, "differs from the expected value"),
])
def test_nt_xent_mistakes_are_named(wrong, hint):
    with pytest.raises(ExerciseError, match=hint):
        exercises.check_nt_xent(wrong)


def test_other_checkers_name_their_mistakes():
    with pytest.raises(ExerciseError, match="anchor itself"):
        exercises.check_supcon(lambda h, y, t: exercises._supcon_variant(h, y, t, anchor_in_denominator=True))
    with pytest.raises(ExerciseError, match="L_in"):
        exercises.check_supcon(lambda h, y, t: exercises._supcon_variant(h, y, t, inside=True))
    with pytest.raises(ExerciseError, match="frequencies"):
        exercises.check_target_distribution(lambda q: q**2 / (q**2).sum(1, keepdim=True))
    with pytest.raises(ExerciseError, match="FGSM"):
        exercises.check_fgm(lambda g, e: e * g.sign())
    with pytest.raises(ExerciseError, match="whole batch"):
        exercises.check_fgm(lambda g, e: e * g / g.norm())


def test_checkers_name_a_wrong_callable():
    from contrastive_tutorial import exercises

    with pytest.raises(TypeError, match="the function, not its result"):
        exercises.check_nt_xent(1.0)
    with pytest.raises(exercises.ExerciseError, match="could not be called with 3 arguments"):
        exercises.check_nt_xent(lambda z1, z2: z1.sum())


def _uniformity_by_loops(x, t):
    n = len(x)
    values = [torch.exp(-t * (x[i] - x[j]).pow(2).sum()) for i in range(n) for j in range(n) if i != j]
    return torch.log(sum(values) / len(values))


def _sinkhorn_by_loops(scores, eps, iterations):
    q = torch.exp(scores / eps)
    n, k = q.shape
    for _ in range(iterations):
        q = q / q.sum(0, keepdim=True) / k
        q = q / q.sum(1, keepdim=True) / n
    return q * n


def _simcse_by_loops(h1, h2, tau):
    a, b = F.normalize(h1, dim=1), F.normalize(h2, dim=1)
    n = len(a)
    return sum(-torch.log(torch.exp(a[i] @ b[i] / tau) / sum(torch.exp(a[i] @ b[j] / tau) for j in range(n)))
               for i in range(n)) / n


def _cached_by_chunks(z1, z2, tau, chunk):
    parts = [_simcse_by_loops(z1, z2, tau) * 0]  # keeps the dtype; the chunks below are the answer
    total = 0.0
    a, b = F.normalize(z1, dim=1), F.normalize(z2, dim=1)
    for start in range(0, len(a), chunk):
        for i in range(start, min(start + chunk, len(a))):
            total = total - torch.log_softmax(a[i] @ b.T / tau, 0)[i]
    return parts[0] + total / len(a)


def test_every_chapter_has_a_checker_that_accepts_a_right_answer(capsys):
    from contrastive_tutorial.chapters import CHAPTERS
    from contrastive_tutorial.methods.promptbert import end_with_period

    assert set(exercises.CHECKERS) == set(CHAPTERS)
    right = {"check_uniformity": _uniformity_by_loops, "check_sinkhorn": _sinkhorn_by_loops,
             "check_simcse_loss": _simcse_by_loops, "check_cached_loss": _cached_by_chunks,
             "check_end_with_period": lambda s: s + "." if s and s[-1] not in ".?\"'" else s,
             "check_nt_xent": _nt_xent_by_loops, "check_supcon": losses.supcon_loss,
             "check_target_distribution": losses.target_distribution,
             "check_fgm": lambda g, e: e * g / g.flatten(1).norm(dim=1).view(-1, 1, 1)}
    for name in exercises.CHECKERS.values():
        assert getattr(exercises, name)(right[name]), name
    assert exercises.check_end_with_period(end_with_period)


@pytest.mark.parametrize("checker,wrong,hint", [
    ("check_uniformity", lambda x, t: exercises._uniformity_variant(x, t, with_self=True), "itself"),
    ("check_uniformity", lambda x, t: exercises._uniformity_variant(x, t, log=False), "log is missing"),
    ("check_uniformity", lambda x, t: exercises._uniformity_variant(x, t, squared=False), "not squared"),
    ("check_uniformity", lambda x, t: losses.uniformity(x, 2.0), "t is missing"),
    ("check_sinkhorn", lambda s, e, i: exercises._sinkhorn_variant(s, e, i, rows_first=True), "before the columns"),
    ("check_sinkhorn", lambda s, e, i: losses.sinkhorn_knopp(s, e, i) / len(s), "sum to 1/B"),
    ("check_sinkhorn", lambda s, e, i: exercises._sinkhorn_variant(s, e, i, divide=False), "divided by epsilon"),
    ("check_simcse_loss", lambda a, b, t: exercises._simcse_variant(a, b, t, normalize=False), "not normalised"),
    ("check_simcse_loss", lambda a, b, t: exercises._simcse_variant(a, b, t, both=True), "both directions"),
    ("check_simcse_loss", lambda a, b, t: losses.nt_xent(a, b, t), "NT-Xent over 2N"),
    ("check_simcse_loss", lambda a, b, t: losses.simcse_loss(a, b, 1 / t), "multiplied by the temperature"),
    ("check_cached_loss", lambda a, b, t, c: exercises._micro_batch_loss(a, b, t, c), "gradient accumulation"),
    ("check_end_with_period", lambda s: s + "." if not s or s[-1] not in ".?\"'" else s, "empty sentence"),
    ("check_end_with_period", lambda s: s + ".", "left as it is"),
    ("check_end_with_period", lambda s: s.strip() + "." if s and s.strip()[-1] not in ".?\"'" else s, "do not strip"),
    ("check_end_with_period", lambda s: s + "." if s and s[-1] not in ".!" else s, "left as it is"),
    ("check_end_with_period", lambda s: s + "." if s and s[-1] not in ".?\"'!" else s, "'!' gets a period"),
    ("check_end_with_period", lambda s: 42, "return a string"),
])
def test_new_checkers_name_each_planted_mistake(checker, wrong, hint):
    with pytest.raises(ExerciseError, match=hint):
        getattr(exercises, checker)(wrong)


def test_each_chapter_asks_for_its_checked_exercise():
    import json
    from pathlib import Path

    from contrastive_tutorial.chapters import CHAPTERS

    root = Path(__file__).parents[1]
    for key, checker in exercises.CHECKERS.items():
        notebook = json.loads((root / f"{CHAPTERS[key].notebook}.ipynb").read_text())
        text = "\n".join("".join(c["source"]) for c in notebook["cells"] if c["cell_type"] == "markdown")
        assert f"exercises.{checker}(" in text[text.index("## Exercises"):], f"{key}: no exercise uses {checker}"
