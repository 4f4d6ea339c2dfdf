import json

import numpy as np
import pytest
import torch

from galm.cli import main
from galm.config.reader import read_config
from galm.config.typed import to_mapping
from galm.data.sources import config_domain
from galm.runs.directory import RunDirectory
from galm.runs.metrics import read_metrics
from galm.search.jobs import search_run, transfer_run
from galm.search.phases import SearchInterrupted
from galm.search.probe import probe_similarity, probe_weights
from galm.search.transfer import (
    build_transfer,
    head_agreement_matrix,
    initialise_from_sources,
    nearest_sources,
    probe_similarity_matrix,
    seconds_to_reach,
    start_transfer,
    steps_to_reach,
)

TINY = [
    "space.resolution=32", "data.synthetic.resolution=32", "data.synthetic.classes_per_domain=6",
    "data.synthetic.images_per_class=10", "data.synthetic.attributes_per_domain=5",
    "data.synthetic.n_domains=2", "train.epochs=1", "train.batch_size=16", "threads=1",
    "search.episodes=2", "search.shared_steps=2", "search.controller_steps=3", "search.batch_size=16",
    "search.controller_attributes_per_step=0", "controller.lr=0.01",
    "transfer.warmup_shared_steps=2", "transfer.warmup_controller_steps=3",
]


@pytest.fixture(scope="module")
def source_run(tmp_path_factory):
    torch.set_num_threads(1)
    config = read_config(None, TINY)
    run = RunDirectory.create(tmp_path_factory.mktemp("source") / "run", to_mapping(config))
    search_run(run, config, config_domain(config), torch.device("cpu"))
    return run


def _target(*extra):
    return read_config(None, [*TINY, "data.domain=syn2", *extra])


def test_transfer_appends_new_attributes_and_keeps_the_source_fixed(source_run, tmp_path):
    config = _target("transfer.init=warmup")
    run = RunDirectory.create(tmp_path / "transfer", to_mapping(config))
    heads, nearest = transfer_run(run, source_run, config, config_domain(config), torch.device("cpu"))
    source_state = torch.load(source_run.path / "checkpoints" / "search.pt", weights_only=False)
    state = torch.load(run.path / "checkpoints" / "search.pt", weights_only=False)
    n_source = len(source_state["attribute_names"])
    target_names = config_domain(config).attribute_names
    assert not set(target_names) & set(source_state["attribute_names"])  # no overlap in names
    assert state["attribute_names"] == source_state["attribute_names"] + target_names
    assert torch.equal(state["controller"]["attribute_embeddings"][:n_source],
                       source_state["controller"]["attribute_embeddings"])
    for key, value in source_state["supernet"].items():
        if key.startswith("heads."):
            assert torch.equal(state["supernet"][key][:n_source], value), key
    archs = json.loads(run.architectures_path.read_text())
    assert list(archs) == target_names == [h.attribute for h in heads]
    record = json.loads((run.path / "transfer.json").read_text())
    assert set(record["nearest"]) == set(target_names)
    assert all(v["nearest_source"] in source_state["attribute_names"] for v in record["nearest"].values())
    assert [n.attribute for n in nearest] == target_names
    # The source run itself is untouched.
    assert json.loads(source_run.architectures_path.read_text()).keys() == set(source_state["attribute_names"])


def test_nearest_attribute_is_found_and_its_embedding_copied(source_run):
    config = _target()
    search = build_transfer(source_run, source_run.config(), config, config_domain(config), torch.device("cpu"))
    n_source = len(search.frozen)
    controller = search.controller
    with torch.no_grad():
        # Make each new attribute's embedding a slightly perturbed copy of a known source attribute.
        planted = [3, 0, 4, 1, 2]
        for row, source in zip(search.active.tolist(), planted):
            controller.attribute_embeddings[row] = controller.attribute_embeddings[source] * 1.01 + 1e-3
    chosen = nearest_sources(search)
    assert chosen == planted
    before = controller.attribute_embeddings.detach().clone()
    similarity = initialise_from_sources(search, chosen, copy_head_weights=True)
    assert all(s > 0.99 for s in similarity)
    for row, source in zip(search.active.tolist(), planted):
        assert torch.equal(controller.attribute_embeddings[row], before[source])
        assert torch.equal(search.supernet.heads.fc1_weight[row], search.supernet.heads.fc1_weight[source])
    assert torch.equal(controller.attribute_embeddings[:n_source], before[:n_source])


def test_transfer_with_a_different_label_type_and_count(source_run, tmp_path):
    config = _target("data.synthetic.label_level=class", "data.synthetic.attributes_per_domain=4",
                     "transfer.init=random")
    run = RunDirectory.create(tmp_path / "t", to_mapping(config))
    heads, nearest = transfer_run(run, source_run, config, config_domain(config), torch.device("cpu"))
    assert len(heads) == 4 and nearest == []


def test_transfer_run_resumes_like_a_search_run(source_run, tmp_path):
    config = _target("search.episodes=3")
    straight = RunDirectory.create(tmp_path / "a", to_mapping(config))
    transfer_run(straight, source_run, config, config_domain(config), torch.device("cpu"))
    stopped = RunDirectory.create(tmp_path / "b", to_mapping(config))

    def interrupt(phase, step):
        if phase == "shared" and step == 6:
            raise SearchInterrupted("simulated crash")

    with pytest.raises(SearchInterrupted):
        transfer_run(stopped, source_run, config, config_domain(config), torch.device("cpu"), on_step=interrupt)
    transfer_run(stopped, source_run, config, config_domain(config), torch.device("cpu"), resume=True)
    a = torch.load(straight.path / "checkpoints" / "search.pt", weights_only=False)
    b = torch.load(stopped.path / "checkpoints" / "search.pt", weights_only=False)
    for key in a["controller"]:
        assert torch.equal(a["controller"][key], b["controller"][key]), key
    assert json.loads(straight.architectures_path.read_text()) == json.loads(stopped.architectures_path.read_text())
    strip = lambda rs: [{k: v for k, v in r.items() if k not in ("time", "seconds")} for r in rs]  # noqa: E731
    assert strip(read_metrics(straight.path)) == strip(read_metrics(stopped.path))
    # The trace times every reward with the search seconds, summed over the interrupted sessions.
    traces = [json.loads((r.path / "search_trace.json").read_text()) for r in (straight, stopped)]
    assert traces[0]["reward_trace"] == traces[1]["reward_trace"]
    for trace in traces:
        seconds = trace["reward_seconds"]
        assert len(seconds) == len(trace["reward_trace"]) and seconds[0] > 0
        assert all(later >= earlier for earlier, later in zip(seconds, seconds[1:]))


def test_steps_to_reach():
    trace = [0.5] * 10 + [0.9] * 10
    assert steps_to_reach(trace, 0.7, window=4) == 12
    assert steps_to_reach(trace, 0.95, window=4) is None
    assert steps_to_reach([], 0.5) is None
    timed = {"reward_trace": trace, "reward_seconds": [0.5 * (k + 1) for k in range(20)]}
    assert seconds_to_reach(timed, 0.7, window=4) == 6.0  # the 12th update
    assert seconds_to_reach(timed, 0.95, window=4) is None
    assert seconds_to_reach({"reward_trace": trace}, 0.7, window=4) is None  # a trace without times


def test_cli_transfer(source_run, tmp_path, capsys):
    sets = [item for s in TINY for item in ("--set", s)]
    out = tmp_path / "cli"
    assert main(["transfer", "--source", str(source_run.path), "--target", "syn2", "--out", str(out), *sets]) == 0
    assert (out / "transfer.json").is_file() and (out / "architectures.json").is_file()
    assert main(["transfer", "--resume", str(out)]) == 0
    assert main(["retrain", str(out)]) == 0
    assert "nearest searched attribute" in capsys.readouterr().out
    bad = ["transfer", "--source", str(tmp_path / "none"), "--target", "syn2", "--out", str(tmp_path / "x"), *sets]
    assert main(bad) == 2


def test_multi_domain_source_search_transfers_to_a_third_domain(tmp_path):
    tiny3 = [s.replace("data.synthetic.n_domains=2", "data.synthetic.n_domains=3") for s in TINY]
    source_config = read_config(None, [*tiny3, "data.domain=syn1+syn2"])
    domain = config_domain(source_config)
    assert domain.name == "syn1+syn2" and domain.n_attributes == 10
    first = domain.metadata["domain_of_attribute"]
    assert sorted(set(first.values())) == ["syn1", "syn2"]
    # syn1's attributes are unknown on syn2's images and the other way round.
    syn2_rows = domain.class_index >= 6
    assert np.isnan(domain.labels[syn2_rows, :5]).all() and np.isnan(domain.labels[~syn2_rows, 5:]).all()
    source = RunDirectory.create(tmp_path / "s12", to_mapping(source_config))
    search_run(source, source_config, config_domain(source_config), torch.device("cpu"))
    target_config = read_config(None, [*tiny3, "data.domain=syn3"])
    run = RunDirectory.create(tmp_path / "s12-d3", to_mapping(target_config))
    heads, nearest = transfer_run(run, source, target_config, config_domain(target_config), torch.device("cpu"))
    assert len(heads) == 5 and {n.source for n in nearest} <= set(domain.attribute_names)
    # arm.json of the joint search and of the transfer carry every attribute's own domain (Fig. 5).
    joint_arm = json.loads(source.arm_path.read_text())
    assert joint_arm["domain_of_attribute"] == ["syn1"] * 5 + ["syn2"] * 5
    arm = json.loads(run.arm_path.read_text())
    assert arm["domain_of_attribute"] == ["syn1"] * 5 + ["syn2"] * 5 + ["syn3"] * 5
    record = json.loads(run.transfer_path.read_text())
    assert record["source_domain"] == "syn1+syn2"
    from galm.report import attribute_domains, domain_similarity

    labels, _ = domain_similarity(arm, attribute_domains(run.path, arm))
    assert labels == ["syn1", "syn2", "syn3"]


def test_probe_similarity_finds_the_attribute_that_leans_on_the_same_features():
    rng = np.random.default_rng(0)
    source_x = rng.standard_normal((400, 20))
    target_x = 5.0 * rng.standard_normal((300, 20)) + 2.0  # other units: probes standardise per domain
    source_y = np.stack([source_x[:, 3 * j] + 0.3 * rng.standard_normal(400) > 0 for j in range(5)], 1)
    planted = [2, 4, 0, 1, 3]
    # Each target attribute uses its planted source's feature with the opposite sign.
    target_y = np.stack([-target_x[:, 3 * k] + 0.3 * rng.standard_normal(300) > -2.0 for k in planted], 1)
    source_labels = source_y.astype(float)
    source_labels[:50, 1] = np.nan  # unknown labels are left out of that attribute's probe
    similarity = probe_similarity(probe_weights(target_x, target_y.astype(float)), probe_weights(source_x, source_labels))
    assert similarity.shape == (5, 5)
    assert similarity.argmax(axis=1).tolist() == planted
    unknown = probe_weights(source_x, np.full((400, 1), np.nan))
    assert not unknown.any()
    constant = probe_weights(source_x, np.ones((400, 1)))
    assert not constant.any() and not probe_similarity(constant, probe_weights(source_x, source_labels)).any()


def test_probe_init_copies_the_probe_nearest_source(source_run, tmp_path):
    config = _target("transfer.init=probe")
    search = build_transfer(source_run, source_run.config(), config, config_domain(config), torch.device("cpu"))
    source_domain = config_domain(source_run.config())
    matrix = probe_similarity_matrix(search, source_domain)
    assert matrix.shape == (len(search.active), len(search.frozen))
    steps = search.controller_step
    nearest = start_transfer(search, config.transfer, source_domain)
    names = search.attribute_names
    assert [names[int(matrix[row].argmax())] for row in range(len(nearest))] == [n.source for n in nearest]
    embeddings = search.controller.attribute_embeddings
    for row, n in zip(search.active.tolist(), nearest):
        assert torch.equal(embeddings[row], embeddings[names.index(n.source)])
    assert search.controller_step == steps  # no reward is spent on choosing
    with pytest.raises(ValueError, match="needs the source domain"):
        start_transfer(search, config.transfer)
    run = RunDirectory.create(tmp_path / "probe", to_mapping(config))
    heads, recorded = transfer_run(run, source_run, config, config_domain(config), torch.device("cpu"))
    assert json.loads((run.path / "transfer.json").read_text())["init"] == "probe" and len(recorded) == len(heads)


def test_heads_init_takes_the_source_head_that_ranks_the_new_labels_best(source_run, tmp_path, monkeypatch):
    config = _target("transfer.init=heads")
    search = build_transfer(source_run, source_run.config(), config, config_domain(config), torch.device("cpu"))
    n_source, n_new = len(search.frozen), len(search.active)
    labels = torch.as_tensor(search.domain.labels, dtype=torch.float32)
    planted = [2, 4, 0, 3, 1][:n_new]
    # Source head j scores every image with the labels of the new attribute planted on it, plus noise;
    # source 0's head predicts its new attribute inverted.
    scores = 0.8 * torch.randn(search.domain.n_images, n_source, generator=torch.Generator().manual_seed(0))
    for new, source in enumerate(planted):
        scores[:, source] += (-1.0 if source == 0 else 1.0) * (2 * labels[:, new] - 1)
    monkeypatch.setattr(search, "batch_images", lambda batch, augment: torch.as_tensor(batch))
    monkeypatch.setattr(search, "head_logits", lambda images, ids, archs: scores[images][:, ids])
    matrix = head_agreement_matrix(search)
    assert matrix.shape == (n_new, n_source)
    assert float(matrix.abs().max()) <= 1.0
    inverted = planted.index(0)
    assert float(matrix[inverted, 0]) < -0.5  # an inverted predictor is not taken as a good start
    steps = search.controller_step
    nearest = start_transfer(search, config.transfer)
    names = search.attribute_names
    for row, (n, source) in enumerate(zip(nearest, planted)):
        if source != 0:
            assert n.source == names[source] and n.similarity > 0.5
        else:
            assert n.source == names[int(matrix[row].argmax())] != names[0]
    embeddings = search.controller.attribute_embeddings
    for row, n in zip(search.active.tolist(), nearest):
        assert torch.equal(embeddings[row], embeddings[names.index(n.source)])
    assert search.controller_step == steps  # no reward is spent on choosing
    monkeypatch.undo()
    run = RunDirectory.create(tmp_path / "heads", to_mapping(config))
    heads, recorded = transfer_run(run, source_run, config, config_domain(config), torch.device("cpu"))
    record = json.loads((run.path / "transfer.json").read_text())
    assert record["init"] == "heads" and len(recorded) == len(heads) == n_new
    assert all(-1.0 <= v["similarity"] <= 1.0 for v in record["nearest"].values())


def test_transfer_names_its_source_domain_by_name(source_run, tmp_path):
    config = _target("transfer.init=random")
    run = RunDirectory.create(tmp_path / "t", to_mapping(config))
    transfer_run(run, source_run, config, config_domain(config), torch.device("cpu"))
    record = json.loads(run.transfer_path.read_text())
    assert record["source_domain"] == "syn1" and record["target_domain"] == "syn2"
    assert record["source_domain_of_attribute"] == ["syn1"] * 5


def test_transfer_applies_controller_overrides_and_refuses_shape_changes(source_run, tmp_path, capsys):
    config = _target("controller.lr=0.5", "controller.entropy_weight=0.2")
    search = build_transfer(source_run, source_run.config(), config, config_domain(config), torch.device("cpu"))
    assert search.trainer.lr == 0.5 and search.trainer.entropy_weight == 0.2
    assert search.trainer.optimizer.param_groups[0]["lr"] == 0.5
    sets = [item for s in TINY for item in ("--set", s)]
    out = tmp_path / "bad"
    code = main(["transfer", "--source", str(source_run.path), "--target", "syn2", "--out", str(out), *sets,
                 "--set", "controller.hidden=8"])
    assert code == 2
    assert "controller.hidden differs from the source run" in capsys.readouterr().err
