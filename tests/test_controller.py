"""Tests of the ARM + MNAS controller: shapes, batching, gradients, hand-checked log-probabilities, transfer."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from galm.nn.controller import Controller
from galm.search.reinforce import reinforce_loss
from galm.space.search_space import SearchSpace

SIZES = SearchSpace().decision_sizes


pytestmark = pytest.mark.usefixtures("single_thread")


def make_controller(n_attributes: int = 4, seed: int = 0, **kwargs) -> Controller:
    """A seeded controller over the real search space's decisions."""
    torch.manual_seed(seed)
    return Controller(n_attributes, SIZES, **kwargs)


def test_sample_shapes_and_consistency() -> None:
    controller = make_controller(n_attributes=5)
    ids = torch.tensor([0, 4, 2, 2, 1])
    sample = controller.sample(ids, generator=torch.Generator().manual_seed(0))
    assert sample.actions.shape == (5, len(SIZES)) and sample.actions.dtype == torch.long
    assert sample.log_prob.shape == (5,) and sample.entropy.shape == (5,)
    assert [tuple(p.shape) for p in sample.probs] == [(5, size) for size in SIZES]
    for t, size in enumerate(SIZES):
        assert int(sample.actions[:, t].min()) >= 0 and int(sample.actions[:, t].max()) < size
        torch.testing.assert_close(sample.probs[t].sum(dim=1), torch.ones(5))
    # The summed log-probability is the sum of the chosen choices' log-probabilities.
    chosen = torch.stack([p.gather(1, sample.actions[:, t : t + 1]).squeeze(1) for t, p in enumerate(sample.probs)], 1)
    torch.testing.assert_close(sample.log_prob.detach(), chosen.log().sum(dim=1))
    # Teacher forcing the sampled actions gives back the same numbers.
    log_prob, entropy = controller.evaluate_actions(ids, sample.actions)
    torch.testing.assert_close(log_prob, sample.log_prob)
    torch.testing.assert_close(entropy, sample.entropy)


def test_sampling_is_one_batched_call_per_decision() -> None:
    controller = make_controller(n_attributes=7)
    calls: list[int] = []
    controller.lstm.register_forward_hook(lambda module, inputs, output: calls.append(inputs[0].shape[1]))
    ids = torch.arange(7)
    batched = controller.sample(ids, greedy=True)
    assert calls == [7] * len(SIZES)  # T LSTM steps, each over the whole batch of attributes
    # Rows of a batch do not mix: each attribute alone gives the same greedy path and probabilities.
    for i in range(7):
        alone = controller.sample(ids[i : i + 1], greedy=True)
        assert torch.equal(alone.actions[0], batched.actions[i])
        for p_alone, p_batch in zip(alone.probs, batched.probs):
            torch.testing.assert_close(p_alone[0], p_batch[i])


def test_greedy_follows_argmax_and_ignores_generator() -> None:
    controller = make_controller(n_attributes=3)
    # Make the policy clearly non-uniform so argmax is well defined.
    with torch.no_grad():
        for head in controller.heads:
            head.bias.normal_(0.0, 1.0)
    ids = torch.tensor([0, 1, 2])
    greedy = controller.sample(ids, greedy=True, generator=torch.Generator().manual_seed(1))
    for t, p in enumerate(greedy.probs):
        assert torch.equal(greedy.actions[:, t], p.argmax(dim=1))
    again = controller.sample(ids, greedy=True, generator=torch.Generator().manual_seed(2))
    assert torch.equal(greedy.actions, again.actions)


def test_sampling_is_reproducible_with_a_generator() -> None:
    controller = make_controller()
    ids = torch.arange(4).repeat(4)
    first = controller.sample(ids, generator=torch.Generator().manual_seed(3)).actions
    second = controller.sample(ids, generator=torch.Generator().manual_seed(3)).actions
    other = controller.sample(ids, generator=torch.Generator().manual_seed(4)).actions
    assert torch.equal(first, second)
    assert not torch.equal(first, other)
    torch.manual_seed(11)
    global_first = controller.sample(ids).actions
    torch.manual_seed(11)
    assert torch.equal(global_first, controller.sample(ids).actions)


def test_reinforce_gradient_reaches_arm_rows_of_sampled_attributes_only() -> None:
    controller = make_controller(n_attributes=6)
    ids = torch.tensor([1, 3, 3])
    sample = controller.sample(ids, generator=torch.Generator().manual_seed(0))
    loss = reinforce_loss(sample.log_prob, torch.tensor([1.0, 0.0, 0.5]), torch.full((3,), 0.2))
    loss.backward()
    grad = controller.attribute_embeddings.grad
    assert grad is not None
    assert grad[1].abs().sum() > 0 and grad[3].abs().sum() > 0
    assert torch.count_nonzero(grad[[0, 2, 4, 5]]) == 0
    assert controller.arm.weight.grad.abs().sum() > 0
    # Both conditioning paths (start input and initial state) carry gradient.
    assert controller.start_proj.weight.grad.abs().sum() > 0
    assert controller.state_proj.weight.grad.abs().sum() > 0


def _lstm_layer_step(x, h, c, w_ih, w_hh, b_ih, b_hh):
    """One LSTM cell step written out with plain tensor operations (PyTorch's gate order i, f, g, o)."""
    gates = x @ w_ih.t() + b_ih + h @ w_hh.t() + b_hh
    i, f, g, o = gates.chunk(4, dim=-1)
    c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
    return torch.sigmoid(o) * torch.tanh(c), c


def _hand_log_prob(controller: Controller, attribute: int, actions: list[int]) -> tuple[float, float]:
    """Log-probability and entropy of one action sequence, recomputed step by step from the weights."""
    L, H = controller.num_layers, controller.hidden
    e = controller.attribute_embeddings[attribute]
    e_hat = controller.arm.weight @ e  # eq. 1
    x = controller.start_proj.weight @ e_hat + controller.start_proj.bias
    h0 = torch.tanh(controller.state_proj.weight @ e_hat + controller.state_proj.bias).view(L, H)
    h = [h0[layer] for layer in range(L)]
    c = [torch.zeros(H) for _ in range(L)]
    total_log_prob, total_entropy = 0.0, 0.0
    for t, action in enumerate(actions):
        inp = x
        for layer in range(L):
            h[layer], c[layer] = _lstm_layer_step(
                inp,
                h[layer],
                c[layer],
                getattr(controller.lstm, f"weight_ih_l{layer}"),
                getattr(controller.lstm, f"weight_hh_l{layer}"),
                getattr(controller.lstm, f"bias_ih_l{layer}"),
                getattr(controller.lstm, f"bias_hh_l{layer}"),
            )
            inp = h[layer]
        logits = controller.heads[t].weight @ inp + controller.heads[t].bias
        probs = torch.exp(logits - torch.logsumexp(logits, dim=0))
        total_log_prob += math.log(float(probs[action]))
        total_entropy += float(-(probs * probs.log()).sum())
        if t + 1 < len(actions):
            x = controller.action_embeddings[t].weight[action]
    return total_log_prob, total_entropy


def test_log_prob_of_fixed_actions_matches_hand_computation() -> None:
    controller = make_controller(n_attributes=3, init_range=0.5)  # wider weights: far from uniform
    actions = [[1, 0, 1, 1, 0, 1, 0, 2, 1, 0], [0, 0, 0, 1, 1, 1, 1, 0, 2, 1]]
    ids = [2, 0]
    log_prob, entropy = controller.evaluate_actions(torch.tensor(ids), torch.tensor(actions))
    with torch.no_grad():
        for row, (attribute, sequence) in enumerate(zip(ids, actions)):
            hand_log_prob, hand_entropy = _hand_log_prob(controller, attribute, sequence)
            assert float(log_prob[row]) == pytest.approx(hand_log_prob, abs=1e-5)
            assert float(entropy[row]) == pytest.approx(hand_entropy, abs=1e-5)


def test_initial_policy_is_near_uniform() -> None:
    controller = make_controller(n_attributes=8)
    sample = controller.sample(torch.arange(8), generator=torch.Generator().manual_seed(0))
    for p, size in zip(sample.probs, SIZES):
        assert (p - 1.0 / size).abs().max() < 0.05
    max_entropy = sum(math.log(size) for size in SIZES)
    assert float(sample.entropy.detach().min()) > 0.99 * max_entropy


def test_cosine_similarity_matrix() -> None:
    controller = make_controller(n_attributes=5)
    reps = controller.attribute_representations()
    assert reps.shape == (5, 50)
    torch.testing.assert_close(reps, controller.attribute_embeddings @ controller.arm.weight.t())
    sim = controller.cosine_similarity_matrix()
    assert sim.shape == (5, 5)
    torch.testing.assert_close(sim, sim.t())
    torch.testing.assert_close(torch.diagonal(sim), torch.ones(5))
    torch.testing.assert_close(sim[1, 3], F.cosine_similarity(reps[1], reps[3], dim=0))


def test_state_dict_round_trip_gives_identical_samples() -> None:
    source = make_controller(seed=0)
    target = make_controller(seed=1)
    target.load_state_dict(source.state_dict())
    ids = torch.arange(4).repeat(3)
    a = source.sample(ids, generator=torch.Generator().manual_seed(5))
    b = target.sample(ids, generator=torch.Generator().manual_seed(5))
    assert torch.equal(a.actions, b.actions)
    assert torch.equal(a.log_prob, b.log_prob)


def test_unconditioned_controller_gives_every_attribute_the_first_embedding() -> None:
    controller = Controller(3, SIZES, attribute_conditioned=False)
    reps = controller.attribute_representations()
    assert torch.allclose(reps, reps[0].expand_as(reps))
    assert torch.allclose(controller.attribute_representations(torch.tensor([2])), reps[:1])
    greedy = controller.sample(torch.arange(3), greedy=True)
    assert torch.equal(greedy.actions[0], greedy.actions[2])
    sample = controller.sample(torch.arange(3), generator=torch.Generator().manual_seed(0))
    sample.log_prob.sum().backward()
    grad = controller.attribute_embeddings.grad
    assert grad[0].abs().sum() > 0 and torch.count_nonzero(grad[1:]) == 0  # only the shared row learns


def test_rejects_bad_ids_and_actions() -> None:
    controller = make_controller(n_attributes=2)
    with pytest.raises(ValueError):
        controller.sample(torch.tensor([0, 2]))
    with pytest.raises(ValueError):
        controller.evaluate_actions(torch.tensor([0]), torch.zeros(1, len(SIZES) - 1, dtype=torch.long))
    bad = torch.zeros(1, len(SIZES), dtype=torch.long)
    bad[0, 0] = SIZES[0]
    with pytest.raises(ValueError):
        controller.evaluate_actions(torch.tensor([0]), bad)


def test_controller_depends_only_on_decision_sizes() -> None:
    controller = Controller(2, [3, 1, 4], hidden=8, arm_dim=5, embedding_dim=4)
    sample = controller.sample(torch.tensor([0, 1, 1]), generator=torch.Generator().manual_seed(0))
    assert sample.actions.shape == (3, 3)
    assert torch.equal(sample.actions[:, 1], torch.zeros(3, dtype=torch.long))  # a single choice
    assert controller.decision_sizes == (3, 1, 4)
