"""Test-time prior adaptation (EM of Saerens et al. 2002): dynacell.states.prior."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from _helpers import state_card

from dynacell.errors import InvalidInputError
from dynacell.states.card import StateModelCard
from dynacell.states.prior import (
    adapt_priors,
    adapt_states_table,
    shift_priors,
    source_prior,
)

MEANS = np.array([0.0, 1.5, 3.0])  # three 1D Gaussian classes, sd 1: overlapping like real state crops


def _posterior(x: np.ndarray, prior: np.ndarray) -> np.ndarray:
    """Exact p(y | x) of the Gaussian classes under ``prior`` (a perfectly calibrated classifier)."""
    like = np.exp(-0.5 * (x[:, None] - MEANS[None]) ** 2)
    w = like * prior
    return w / w.sum(1, keepdims=True)


def _sample(prior, n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = rng.choice(3, size=n, p=prior)
    return MEANS[y] + rng.standard_normal(n), y


@pytest.mark.parametrize("target", [(0.90, 0.04, 0.06), (0.2, 0.3, 0.5), (0.5, 0.35, 0.15)])
def test_recovers_a_known_prior_shift(target):
    source = np.full(3, 1 / 3)  # a class-balanced classifier
    x, y = _sample(target, 20000, seed=1)
    p = _posterior(x, source)
    naive = p.mean(0)
    res = adapt_priors(p, source)
    assert res.converged
    np.testing.assert_allclose(res.prior, target, atol=0.02)
    # the mean of the uncorrected probabilities is biased toward the source prior; EM removes it
    assert np.abs(res.prior - target).max() < 0.5 * np.abs(naive - target).max()
    # the adapted probabilities are much closer to the posterior under the true prior
    truth = _posterior(x, np.asarray(target))
    assert np.abs(res.proba - truth).mean() < 0.25 * np.abs(p - truth).mean()
    assert (res.proba.argmax(1) == y).mean() >= (p.argmax(1) == y).mean()


def test_no_shift_keeps_the_prior_and_a_nonuniform_source():
    source = np.array([0.6, 0.1, 0.3])
    x, _ = _sample(source, 20000, seed=2)
    res = adapt_priors(_posterior(x, source), source)
    np.testing.assert_allclose(res.prior, source, atol=0.02)
    # a shift away from a non-uniform source is found too
    x, _ = _sample((0.2, 0.6, 0.2), 20000, seed=3)
    np.testing.assert_allclose(adapt_priors(_posterior(x, source), source).prior, (0.2, 0.6, 0.2), atol=0.02)


def test_rare_events_stop_false_calls():
    source = np.full(3, 1 / 3)
    x, y = _sample((0.96, 0.02, 0.02), 5000, seed=4)
    p = _posterior(x, source)
    res = adapt_priors(p, source)
    false_before = int(((p.argmax(1) > 0) & (y == 0)).sum())
    false_after = int(((res.proba.argmax(1) > 0) & (y == 0)).sum())
    assert false_after < 0.25 * false_before


def test_min_prior_floor_and_edge_cases():
    p = np.tile([0.98, 0.01, 0.01], (50, 1))
    res = adapt_priors(p, min_prior=0.01)
    assert res.prior.min() >= 0.01 / 1.03 - 1e-12 and res.prior[0] < 0.99
    np.testing.assert_allclose(res.proba.sum(1), 1.0)
    empty = adapt_priors(np.zeros((0, 3)))
    assert empty.proba.shape == (0, 3) and empty.n_iter == 0
    np.testing.assert_allclose(empty.prior, 1 / 3)
    for bad in (np.ones(3), -np.ones((2, 3)), np.full((2, 3), np.nan), np.zeros((2, 3))):
        with pytest.raises(InvalidInputError):
            adapt_priors(bad)
    with pytest.raises(InvalidInputError):
        adapt_priors(np.ones((2, 3)) / 3, source=[0.5, 0.5])
    with pytest.raises(InvalidInputError):
        adapt_priors(np.ones((2, 3)) / 3, min_prior=0.5)


def test_adapt_states_table_rewrites_probabilities_and_state():
    x, _ = _sample((0.9, 0.05, 0.05), 2000, seed=5)
    p = _posterior(x, np.full(3, 1 / 3))
    classes = ["stable", "mitotic", "new_daughter"]
    table = pd.DataFrame({"t": np.arange(len(p)), "state": np.asarray(classes)[p.argmax(1)],
                          **{f"p_{c}": p[:, i] for i, c in enumerate(classes)}, "p_death": 0.0})
    out, res = adapt_states_table(table, classes)
    assert (out["state"] == "stable").sum() > (table["state"] == "stable").sum()
    np.testing.assert_allclose(out[[f"p_{c}" for c in classes]].to_numpy(), res.proba)
    assert (out["p_death"] == 0).all() and (table[["p_stable"]].to_numpy() == p[:, :1]).all()  # input untouched
    with pytest.raises(InvalidInputError):
        adapt_states_table(table.drop(columns="p_mitotic"), classes)


def test_source_prior_from_the_card():
    classes = ["stable", "mitotic", "new_daughter"]
    balanced = SimpleNamespace(name="m", classes=classes, card=StateModelCard(**state_card(classes=classes)))
    np.testing.assert_allclose(source_prior(balanced), 1 / 3)
    counts = {"samples": {"train": {"stable": 80, "mitotic": 5, "new_daughter": 15}}}
    plain = SimpleNamespace(name="m", classes=classes,
                            card=StateModelCard(**state_card(classes=classes, balance="none", training_data=counts)))
    np.testing.assert_allclose(source_prior(plain), [0.8, 0.05, 0.15])
    bare = SimpleNamespace(name="m", classes=classes, card=StateModelCard(**state_card(classes=classes, balance="none")))
    with pytest.raises(InvalidInputError):
        source_prior(bare)


def test_strength_interpolates_between_none_and_em():
    source = np.full(3, 1 / 3)
    x, _ = _sample((0.9, 0.05, 0.05), 3000, seed=6)
    p = _posterior(x, source)
    full, none, half = (adapt_priors(p, source, strength=s) for s in (1.0, 0.0, 0.5))
    np.testing.assert_allclose(none.proba, p)
    np.testing.assert_allclose(half.prior, full.prior)  # the estimate does not depend on the strength
    stable = [r.proba[:, 0].mean() for r in (none, half, full)]
    assert stable[0] < stable[1] < stable[2]
    with pytest.raises(InvalidInputError):
        adapt_priors(p, strength=1.5)


def test_shift_priors_is_bayes_rule_to_a_known_prior():
    x, _ = _sample((0.5, 0.2, 0.3), 500, seed=7)
    target = np.array([0.7, 0.1, 0.2])
    np.testing.assert_allclose(shift_priors(_posterior(x, np.full(3, 1 / 3)), np.ones(3), target),
                               _posterior(x, target), atol=1e-12)
    with pytest.raises(InvalidInputError):
        shift_priors(np.ones((2, 3)) / 3, np.ones(3), np.array([1.0, 0.0, 1.0]))
