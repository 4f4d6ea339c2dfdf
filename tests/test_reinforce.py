"""Tests of REINFORCE for the controller: EMA baseline, loss, trainer step, and convergence on a toy reward."""

from __future__ import annotations

import time

import pytest
import torch

from galm.nn.controller import Controller
from galm.search.reinforce import ControllerTrainer, RewardBaseline, reinforce_loss
from galm.space.search_space import SearchSpace

SIZES = SearchSpace().decision_sizes


pytestmark = pytest.mark.usefixtures("single_thread")


def make_controller(n_attributes: int = 3, seed: int = 0) -> Controller:
    torch.manual_seed(seed)
    return Controller(n_attributes, SIZES)


# ----------------------------------------------------------------------------- baseline


def test_global_baseline_ema_arithmetic() -> None:
    baseline = RewardBaseline(decay=0.9)
    assert baseline.value(torch.tensor([0, 0])).tolist() == [0.0, 0.0]  # nothing seen yet
    assert baseline.value(torch.tensor([0]), default=torch.tensor([0.7])).tolist() == pytest.approx([0.7])
    baseline.update(torch.tensor([0]), torch.tensor([1.0]))  # the first reward initialises b
    assert baseline.value(torch.tensor([0])).item() == pytest.approx(1.0)
    baseline.update(torch.tensor([0]), torch.tensor([0.0]))
    assert baseline.value(torch.tensor([0])).item() == pytest.approx(0.9)
    baseline.update(torch.tensor([0, 0]), torch.tensor([0.5, 1.0]))  # sequential, in order
    expected = 0.9 * (0.9 * 0.9 + 0.1 * 0.5) + 0.1 * 1.0  # 0.874
    assert baseline.value(torch.tensor([0, 0])).tolist() == pytest.approx([expected, expected])
    # The default only applies to baselines that have seen no reward.
    assert baseline.value(torch.tensor([0]), default=torch.tensor([5.0])).item() == pytest.approx(expected)


def test_global_baseline_batch_equals_single_steps() -> None:
    rewards = [0.3, 0.9, 0.1, 0.6, 0.8]
    batched, single = RewardBaseline(decay=0.8), RewardBaseline(decay=0.8)
    batched.update(torch.zeros(5, dtype=torch.long), torch.tensor(rewards))
    for r in rewards:
        single.update(torch.tensor([0]), torch.tensor([r]))
    assert batched.value(torch.tensor([0])).item() == pytest.approx(single.value(torch.tensor([0])).item())


def test_per_attribute_baseline_ema_arithmetic() -> None:
    baseline = RewardBaseline(decay=0.5, per_attribute=True, n_attributes=3)
    baseline.update(torch.tensor([0, 1, 0]), torch.tensor([1.0, 2.0, 3.0]))
    # attribute 0: init 1, then 0.5*1 + 0.5*3 = 2; attribute 1: init 2; attribute 2: unseen.
    assert baseline.value(torch.tensor([0, 1, 2])).tolist() == pytest.approx([2.0, 2.0, 0.0])
    assert baseline.value(torch.tensor([2, 0]), default=torch.tensor([7.0, 9.0])).tolist() == pytest.approx([7.0, 2.0])
    baseline.update(torch.tensor([2, 1]), torch.tensor([4.0, 0.0]))
    assert baseline.value(torch.tensor([0, 1, 2])).tolist() == pytest.approx([2.0, 1.0, 4.0])


def test_baseline_state_dict_round_trip() -> None:
    baseline = RewardBaseline(decay=0.5, per_attribute=True, n_attributes=2)
    baseline.update(torch.tensor([0, 1]), torch.tensor([0.4, 0.8]))
    restored = RewardBaseline(decay=0.9, per_attribute=True, n_attributes=2)
    restored.load_state_dict(baseline.state_dict())
    assert restored.decay == 0.5
    assert restored.value(torch.tensor([0, 1])).tolist() == pytest.approx([0.4, 0.8])
    with pytest.raises(ValueError):
        RewardBaseline(per_attribute=False).load_state_dict(baseline.state_dict())
    with pytest.raises(ValueError):
        baseline.value(torch.tensor([2]))


# --------------------------------------------------------------------------------- loss


def test_reinforce_loss_matches_hand_computation() -> None:
    log_prob = torch.tensor([-1.0, -2.0], requires_grad=True)
    rewards = torch.tensor([1.0, 0.0], requires_grad=True)
    baseline = torch.tensor([0.5, 0.5], requires_grad=True)
    entropy = torch.tensor([2.0, 4.0], requires_grad=True)
    # advantages (0.5, -0.5): -mean(-1*0.5, -2*-0.5) = -0.25; entropy bonus 0.1 * mean(2, 4) = 0.3
    assert reinforce_loss(log_prob, rewards, baseline).item() == pytest.approx(-0.25)
    loss = reinforce_loss(log_prob, rewards, baseline, entropy, entropy_weight=0.1)
    assert loss.item() == pytest.approx(-0.55)
    loss.backward()
    assert log_prob.grad.tolist() == pytest.approx([-0.25, 0.25])  # -advantage / m
    assert entropy.grad.tolist() == pytest.approx([-0.05, -0.05])  # -weight / m
    assert rewards.grad is None and baseline.grad is None  # the advantage is detached
    with pytest.raises(ValueError):
        reinforce_loss(log_prob, torch.zeros(3), torch.zeros(3))


@pytest.mark.parametrize("reward, direction", [(1.0, 1), (-1.0, -1)])
def test_step_moves_probability_of_sampled_action_with_advantage_sign(reward: float, direction: int) -> None:
    controller = make_controller()
    baseline = RewardBaseline()
    baseline.update(torch.tensor([0]), torch.tensor([0.0]))  # b = 0, so the advantage is the reward
    trainer = ControllerTrainer(controller, lr=1e-2, baseline=baseline)
    ids = torch.tensor([1])
    sample = controller.sample(ids, generator=torch.Generator().manual_seed(0))
    before = sample.log_prob.item()
    info = trainer.step(ids, sample, torch.tensor([reward]))
    after = controller.evaluate_actions(ids, sample.actions)[0].item()
    assert (after - before) * direction > 0.05
    assert info["advantage"] == pytest.approx(reward) and info["baseline"] == pytest.approx(0.0)
    assert baseline.value(ids).item() == pytest.approx(0.05 * reward)  # updated after the step


def test_first_step_of_an_unseen_baseline_has_zero_advantage() -> None:
    controller = make_controller()
    trainer = ControllerTrainer(controller, lr=1e-2)
    ids = torch.tensor([0, 2])
    info = trainer.step(ids, controller.sample(ids), torch.tensor([0.3, 0.5]))
    # A baseline that has seen nothing reports the rewards themselves, then starts from the first.
    assert info["baseline"] == pytest.approx(0.4)
    assert trainer.baseline.value(torch.tensor([0])).item() == pytest.approx(0.95 * 0.3 + 0.05 * 0.5)


def test_entropy_bonus_spreads_a_peaked_policy() -> None:
    controller = make_controller(n_attributes=2)
    with torch.no_grad():
        for head in controller.heads:
            head.bias.zero_()
            head.bias[0] = 3.0
    baseline = RewardBaseline()
    baseline.update(torch.tensor([0]), torch.tensor([0.5]))
    trainer = ControllerTrainer(controller, lr=1e-2, baseline=baseline, entropy_weight=1.0)
    ids = torch.tensor([0, 1])
    generator = torch.Generator().manual_seed(0)
    entropies = []
    for _ in range(10):
        sample = controller.sample(ids, generator=generator)
        entropies.append(trainer.step(ids, sample, torch.tensor([0.5, 0.5]))["entropy"])  # zero advantage
    assert entropies[-1] > entropies[0] + 0.5


@pytest.mark.parametrize("clip", [1e-3, None])
def test_gradient_clipping_bounds_the_global_norm(clip: float | None) -> None:
    controller = make_controller()
    baseline = RewardBaseline()
    baseline.update(torch.tensor([0]), torch.tensor([0.0]))
    trainer = ControllerTrainer(controller, lr=1e-4, baseline=baseline, grad_clip=clip)
    ids = torch.tensor([0, 1, 2])
    info = trainer.step(ids, controller.sample(ids), torch.tensor([100.0, -50.0, 80.0]))
    grads = [p.grad.norm() for p in controller.parameters() if p.grad is not None]
    applied = torch.linalg.vector_norm(torch.stack(grads))
    if clip is None:
        assert applied.item() == pytest.approx(info["grad_norm"], rel=1e-5)
    else:
        assert info["grad_norm"] > 10 * clip  # reported norm is the one before clipping
        assert applied.item() <= clip * (1 + 1e-4)


def test_step_accepts_log_prob_entropy_pair_and_reports_floats() -> None:
    controller = make_controller()
    trainer = ControllerTrainer(controller, lr=1e-3)
    ids = torch.tensor([0, 1])
    sample = controller.sample(ids)
    log_prob, entropy = controller.evaluate_actions(ids, sample.actions)
    info = trainer.step(ids, (log_prob, entropy), [0.2, 0.4])
    assert set(info) == {"loss", "reward", "baseline", "advantage", "entropy", "grad_norm"}
    assert all(isinstance(v, float) for v in info.values())
    assert info["reward"] == pytest.approx(0.3)


def _train_steps(controller: Controller, trainer: ControllerTrainer, steps: int, seed: int) -> None:
    generator = torch.Generator().manual_seed(seed)
    ids = torch.arange(controller.n_attributes)
    for _ in range(steps):
        sample = controller.sample(ids, generator=generator)
        trainer.step(ids, sample, torch.rand(len(ids), generator=generator))


def test_trainer_state_dict_round_trip_resumes_identically() -> None:
    controller = make_controller()
    trainer = ControllerTrainer(controller, lr=1e-2, baseline=RewardBaseline(per_attribute=True, n_attributes=3))
    _train_steps(controller, trainer, 3, seed=0)
    resumed_controller = make_controller(seed=5)
    resumed_controller.load_state_dict(controller.state_dict())
    resumed_baseline = RewardBaseline(per_attribute=True, n_attributes=3)
    resumed = ControllerTrainer(resumed_controller, lr=1e-2, baseline=resumed_baseline)
    resumed.load_state_dict(trainer.state_dict())
    _train_steps(controller, trainer, 2, seed=1)
    _train_steps(resumed_controller, resumed, 2, seed=1)
    for a, b in zip(controller.parameters(), resumed_controller.parameters()):
        assert torch.equal(a, b)
    assert torch.equal(trainer.baseline.values, resumed.baseline.values)


def test_trainer_over_a_parameter_subset_moves_only_those() -> None:
    controller = make_controller(n_attributes=2)
    others = {name: p.detach().clone() for name, p in controller.named_parameters() if name != "attribute_embeddings"}
    before = controller.attribute_embeddings.detach().clone()
    trainer = ControllerTrainer(controller, lr=1e-2, parameters=[controller.attribute_embeddings], grad_clip=None)
    _train_steps(controller, trainer, 2, seed=0)
    assert not torch.equal(controller.attribute_embeddings.detach(), before)
    for name, param in controller.named_parameters():
        if name != "attribute_embeddings":
            assert torch.equal(param.detach(), others[name]), name


# ------------------------------------------------------------------------- convergence

TARGETS = torch.tensor(
    [
        [0, 1, 0, 1, 0, 1, 0, 2, 1, 0],
        [1, 0, 1, 0, 1, 0, 1, 0, 2, 1],
        [1, 1, 0, 0, 1, 1, 1, 1, 0, 0],
        [0, 0, 1, 1, 0, 0, 0, 2, 2, 1],
    ]
)


def test_conditioned_controller_learns_a_different_best_architecture_per_attribute() -> None:
    """Toy reward: fraction of decisions matching each attribute's own target, plus small noise."""
    n, max_steps, check_every = len(TARGETS), 1500, 25
    controller = make_controller(n_attributes=n, seed=0)
    trainer = ControllerTrainer(
        controller,
        lr=3e-3,
        baseline=RewardBaseline(decay=0.9, per_attribute=True, n_attributes=n),
        entropy_weight=0.02,
    )
    generator = torch.Generator().manual_seed(0)
    ids = torch.arange(n).repeat(4)  # every attribute, four samples each, in one batch
    start, converged_at = time.perf_counter(), None
    for step in range(1, max_steps + 1):
        sample = controller.sample(ids, generator=generator)
        noise = 0.02 * torch.randn(len(ids), generator=generator)
        rewards = (sample.actions == TARGETS[ids]).float().mean(dim=1) + noise
        trainer.step(ids, sample, rewards)
        if step % check_every == 0:
            with torch.no_grad():
                greedy = controller.sample(torch.arange(n), greedy=True).actions
            if torch.equal(greedy, TARGETS):
                converged_at = step
                break
    elapsed = time.perf_counter() - start
    assert converged_at is not None, f"greedy {greedy.tolist()} != targets after {max_steps} steps ({elapsed:.1f}s)"
    print(f"converged after {converged_at} steps in {elapsed:.1f}s")
