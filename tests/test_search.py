import json
import shutil

import numpy as np
import pytest
import torch

from galm.cli import main
from galm.config.reader import read_config
from galm.config.typed import to_mapping
from galm.data.sources import config_domain
from galm.runs.directory import RunDirectory
from galm.runs.metrics import read_metrics
from galm.search.derive import derive
from galm.search.jobs import build_search, search_run
from galm.search.phases import SearchInterrupted, run_search, shared_step

TINY = [
    "space.resolution=32", "data.synthetic.resolution=32", "data.synthetic.classes_per_domain=6",
    "data.synthetic.images_per_class=10", "data.synthetic.attributes_per_domain=5",
    "data.synthetic.n_domains=2", "train.epochs=1", "train.batch_size=16", "threads=1",
    "search.episodes=3", "search.shared_steps=2", "search.controller_steps=3", "search.batch_size=16",
    "search.controller_attributes_per_step=2", "search.attributes_per_step=3", "controller.lr=0.01",
]


def _config(*extra: str):
    return read_config(None, [*TINY, *extra])


def _without_times(records):
    return [{k: v for k, v in r.items() if k not in ("time", "seconds")} for r in records]


def test_resumed_search_equals_uninterrupted_search(tmp_path):
    config = _config("search.derive=best_of_k", "search.derive_samples=2")
    straight = RunDirectory.create(tmp_path / "straight", to_mapping(config))
    search_run(straight, config, config_domain(config), torch.device("cpu"))

    stopped = RunDirectory.create(tmp_path / "stopped", to_mapping(config))

    def interrupt(phase: str, step: int) -> None:
        if phase == "controller" and step == 5:  # in the middle of episode 2
            raise SearchInterrupted("simulated crash")

    with pytest.raises(SearchInterrupted):
        search_run(stopped, config, config_domain(config), torch.device("cpu"), on_step=interrupt)
    assert not stopped.architectures_path.exists()
    search_run(stopped, config, config_domain(config), torch.device("cpu"), resume=True)

    a = torch.load(straight.path / "checkpoints" / "search.pt", weights_only=False)
    b = torch.load(stopped.path / "checkpoints" / "search.pt", weights_only=False)
    for part in ("controller", "supernet"):
        for key in a[part]:
            assert torch.equal(a[part][key], b[part][key]), f"{part}.{key}"
    assert a["counters"] == b["counters"]
    assert json.loads(straight.architectures_path.read_text()) == json.loads(stopped.architectures_path.read_text())
    assert _without_times(read_metrics(straight.path)) == _without_times(read_metrics(stopped.path))


def test_validation_and_search_never_touch_test_classes(tmp_path):
    config = _config()
    domain = config_domain(config)
    search = build_search(config, domain, torch.device("cpu"))
    seen: list[np.ndarray] = []
    original = search.batch_images

    def recording(batch, augment, rows=None):
        seen.append(np.asarray(batch))
        return original(batch, augment, rows)

    search.batch_images = recording
    run_search(search)
    derive(search, "best_of_k", 2)
    used = np.unique(np.concatenate(seen))
    test = set(domain.split("test").tolist())
    assert test.isdisjoint(used.tolist())
    test_classes = set(domain.class_index[domain.split("test")].tolist())
    val_classes = set(domain.class_index[domain.split("val")].tolist())
    assert test_classes.isdisjoint(val_classes)


def test_derive_writes_every_attribute_and_arm_similarities(tmp_path):
    config = _config()
    run = RunDirectory.create(tmp_path / "run", to_mapping(config))
    heads = search_run(run, config, config_domain(config), torch.device("cpu"))
    domain = config_domain(config)
    archs = json.loads(run.architectures_path.read_text())
    assert list(archs) == domain.attribute_names == [h.attribute for h in heads]
    for record in archs.values():
        assert 0 < record["probability"] <= 1
        assert 0 <= record["val_reward"] <= 1
        assert set(record["architecture"]) >= {"conv4_kernel", "fc3_input"}
    arm = json.loads((run.path / "arm.json").read_text())
    similarity = np.array(arm["cosine_similarity"])
    assert similarity.shape == (5, 5)
    np.testing.assert_allclose(np.diag(similarity), 1.0, atol=1e-5)
    np.testing.assert_allclose(similarity, similarity.T, atol=1e-6)
    assert len(arm["representations"][0]) == 50
    phases = {r["phase"] for r in read_metrics(run.path)}
    assert {"shared", "controller"} <= phases
    controller_records = [r for r in read_metrics(run.path) if r["phase"] == "controller"]
    assert {"reward", "baseline", "entropy", "p.conv4_kernel=3"} <= set(controller_records[-1])


def test_paper_mode_trains_one_head_per_step():
    config = _config("search.attributes_per_step=1", "search.head_mode=per_attribute")
    search = build_search(config, config_domain(config), torch.device("cpu"))
    before = search.supernet.heads.fc3_bias["fc1"].detach().clone()
    before2 = search.supernet.heads.fc3_bias["fc2"].detach().clone()
    shared_step(search)
    changed = (search.supernet.heads.fc3_bias["fc1"] != before) | (search.supernet.heads.fc3_bias["fc2"] != before2)
    assert int(changed.sum()) == 1


def test_controller_learns_during_search():
    config = _config("search.controller_steps=20", "search.episodes=2")
    search = build_search(config, config_domain(config), torch.device("cpu"))
    start = {k: v.clone() for k, v in search.controller.state_dict().items()}
    run_search(search)
    assert search.controller_step == 40 and search.shared_step == 4
    assert not torch.equal(start["attribute_embeddings"], search.controller.attribute_embeddings)


def test_cli_search_derive_retrain_evaluate(tmp_path, capsys):
    run = tmp_path / "run"
    sets = [item for pair in (("--set", s) for s in TINY) for item in pair]
    assert main(["search", "--out", str(run), *sets]) == 0
    assert main(["derive", str(run), "--method", "best_of_k", "--samples", "2"]) == 0
    assert main(["retrain", str(run)]) == 0
    results = json.loads((run / "results.json").read_text())
    assert results["trained_on"] == ["train", "val"] and results["split"] == "test"
    assert main(["evaluate", str(run), "--split", "val"]) == 0
    assert (run / "results-val.json").is_file()
    assert main(["search", "--resume", str(run)]) == 0  # already finished: derives again, no new episodes
    out = capsys.readouterr().out
    assert "mAUC on test" in out and "val reward" in out
    assert main(["search", "--resume", str(run), "--set", "seed=3"]) == 2
    assert main(["retrain", str(tmp_path / "missing")]) == 2


def _scalar_events(directory):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(directory))
    events.Reload()
    return {tag: [e.step for e in events.Scalars(tag)] for tag in events.Tags()["scalars"]}


def test_resume_rewinds_tensorboard_with_the_metrics(tmp_path):
    """A crash after an episode was logged but before its checkpoint: the resume redoes that
    episode, and neither metrics.jsonl nor TensorBoard shows it twice."""
    config = _config()
    run = RunDirectory.create(tmp_path / "run", to_mapping(config))
    saved = tmp_path / "episode1.pt"

    def keep_first_checkpoint(phase: str, step: int) -> None:
        if phase == "shared" and step == 3:  # episode 2 has begun: episode 1's checkpoint is final
            shutil.copy(run.search_checkpoint_path, saved)

    search_run(run, config, config_domain(config), torch.device("cpu"), on_step=keep_first_checkpoint)
    shutil.copy(saved, run.search_checkpoint_path)  # as if the crash came before episode 2's checkpoint
    search_run(run, config, config_domain(config), torch.device("cpu"), resume=True)
    steps = [r["step"] for r in read_metrics(run.path) if r["phase"] == "shared"]
    assert steps == sorted(set(steps))
    scalars = _scalar_events(run.tensorboard_dir)
    assert scalars["shared/loss"] == steps


def test_attributes_the_training_split_cannot_teach_are_skipped_and_reported(tmp_path):
    import dataclasses

    from galm.search.jobs import retrain_run

    config = _config("search.min_positives=3")
    domain = config_domain(config)
    labels = domain.labels.copy()
    train = domain.split("train")
    constant, rare = domain.attribute_names[0], domain.attribute_names[1]
    labels[train, 0] = 0.0                      # constant on train, still varies on test
    labels[:, 1] = 0.0
    labels[train[:2], 1] = 1.0                  # two positives on train: fewer than 3
    labels[domain.split("test")[:3], 1] = 1.0
    domain = dataclasses.replace(domain, labels=labels)
    state = build_search(config, domain, torch.device("cpu"))
    assert set(state.skipped) == {constant, rare}
    assert "constant on train" in state.skipped[constant] and "only 2 positives" in state.skipped[rare]
    assert set(state.active.tolist()) == set(range(2, domain.n_attributes))

    run = RunDirectory.create(tmp_path / "run", to_mapping(config))
    heads = search_run(run, config, domain, torch.device("cpu"))
    assert {h.attribute for h in heads} == set(domain.attribute_names[2:])
    quality = json.loads(run.search_quality_path.read_text())
    assert quality["n_skipped"] == 2 and set(quality["per_attribute"]) == set(domain.attribute_names[2:])
    assert 0.0 <= quality["random_val_mauc"] <= 1.0 and 0.0 <= quality["searched_val_mauc"] <= 1.0
    assert 0.0 < quality["policy_entropy"] <= quality["max_policy_entropy"]
    assert 0.0 <= quality["share_of_argmax_changed"] <= 1.0
    archs = json.loads(run.architectures_path.read_text())
    assert archs[constant]["skipped"].startswith("constant on train") and "skipped" not in archs[domain.attribute_names[2]]
    results = retrain_run(run, domain, torch.device("cpu")).to_json()
    assert set(results["skipped"]) == {constant, rare}
    assert constant in results["per_attribute_auc"]          # scored and shown ...
    assert results["n_attributes_scored"] == results["n_attributes_varying"] - 2   # ... but not in mAUC
    learnable = [v for k, v in results["per_attribute_auc"].items() if k not in (constant, rare)]
    assert results["mauc"] == pytest.approx(np.mean(learnable))
    assert results["mauc_all_varying"] == pytest.approx(np.mean(list(results["per_attribute_auc"].values())))


def test_derive_by_short_training_picks_the_best_candidate_by_validation_auc(tmp_path):
    config = _config("search.derive=trained", "search.derive_samples=3", "search.derive_epochs=1", "search.episodes=1")
    state = build_search(config, config_domain(config), torch.device("cpu"))
    run_search(state)
    heads = derive(state)
    assert len(heads) == len(state.active)
    assert all(0.0 <= h.val_reward <= 1.0 or np.isnan(h.val_reward) for h in heads)
    from galm.search.derive import trained_candidates

    candidates = [[h.architecture for h in heads], [state.space.default()] * len(heads)]
    best, aucs = trained_candidates(state, candidates, config.train)
    assert aucs.shape == (2, len(heads))
    assert best == torch.nan_to_num(aucs, nan=-1.0).argmax(dim=0).tolist()


def test_retraining_again_replaces_the_earlier_retrain_records(tmp_path):
    from galm.search.jobs import retrain_run

    config = _config("search.episodes=1")
    run = RunDirectory.create(tmp_path / "run", to_mapping(config))
    domain = config_domain(config)
    search_run(run, config, domain, torch.device("cpu"))
    retrain_run(run, domain, torch.device("cpu"))
    once = [r for r in read_metrics(run.path) if r["phase"] in ("retrain", "evaluate")]
    retrain_run(run, domain, torch.device("cpu"))
    twice = [r for r in read_metrics(run.path) if r["phase"] in ("retrain", "evaluate")]
    assert _without_times(once) == _without_times(twice)
    assert _scalar_events(run.tensorboard_dir)["retrain/loss"] == [r["step"] for r in once if r["phase"] == "retrain"]
