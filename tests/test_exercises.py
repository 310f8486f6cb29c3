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
