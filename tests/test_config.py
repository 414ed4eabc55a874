"""Typed configs: pinned keys, overrides, validation messages."""
import pytest

from grok_core.config import ENGINE_VERSION, ConfigError, ExperimentConfig, all_keys


def test_required_keys_exist_under_their_names():
    for key in ["task.op", "task.p", "task.train_fraction", "model.name", "optim.lr",
                "optim.weight_decay", "train.steps", "prune.step", "prune.scope", "prune.rate"]:
        assert key in all_keys()


def test_paper_defaults():
    c = ExperimentConfig()
    assert (c.task.op, c.task.p, c.task.pairs, c.task.train_fraction) == ("add", 67, "ge", 0.4)
    assert (c.model.name, c.model.emb_width, c.model.hidden_width) == ("mlp", 500, 48)
    assert (c.optim.lr, c.optim.weight_decay, c.optim.beta1, c.optim.beta2) == (1e-3, 1.0, 0.9, 0.98)
    assert (c.train.steps, c.train.checkpoint_every, c.train.threshold) == (30_000, 2_000, 0.95)
    assert (c.prune.rate, c.prune.step, c.prune.scope) == (0.6, "final", "global")


def test_pinned_dense_keys():
    # Changing these literals means every stored dense run is orphaned: do it only on purpose
    # (bump ENGINE_VERSION when stored results would differ; then pin the new keys here).
    assert ENGINE_VERSION == 3
    assert ExperimentConfig().dense_key() == "dense-81f70c39d73bd768"  # mlp engine 2
    assert (ExperimentConfig().with_overrides(["optim.weight_decay=0"]).dense_key()
            == "dense-1179e73205992b58")
    assert (ExperimentConfig().with_overrides(["task.pairs=gt"]).dense_key()
            == "dense-dae7e7dec9364511")


def test_the_engine_version_salts_every_key(monkeypatch):
    import grok_core.config.experiment as config  # where dense_key reads it

    before = ExperimentConfig().dense_key()
    monkeypatch.setattr(config, "ENGINE_VERSION", ENGINE_VERSION + 1)
    assert ExperimentConfig().dense_key() != before


def test_a_model_engine_version_salts_that_models_keys_only(monkeypatch):
    import grok_core.config.experiment as config

    transformer = ExperimentConfig().with_overrides(
        ["model.name=transformer", "model.pos_embed=false", "model.biases=false",
         "optim.weight_decay=2"])
    assert transformer.dense_key() == "dense-cd801556f84a2e20"  # transformer engine 3
    mlp = ExperimentConfig().dense_key()
    monkeypatch.setitem(config.MODEL_ENGINE_VERSIONS, "transformer", 4)
    assert transformer.dense_key() != "dense-cd801556f84a2e20"
    assert ExperimentConfig().dense_key() == mlp


def test_the_mlp_engine_version_salts_eq_1s_mlp_not_the_vector_tasks_mlp(monkeypatch):
    import grok_core.config.experiment as config

    digits = ExperimentConfig().with_overrides(["task.name=digits"])
    assert digits.dense_key() == "dense-48b507be6cd67eef"  # keys of engine 3, unsalted
    mlp = ExperimentConfig().dense_key()
    monkeypatch.setitem(config.MODEL_ENGINE_VERSIONS, "mlp", 3)
    assert ExperimentConfig().dense_key() != mlp
    assert digits.dense_key() == "dense-48b507be6cd67eef"


def test_key_ignores_defaults_pruning_and_recipe():
    base = ExperimentConfig()
    same = base.with_overrides(["optim.lr=0.001", "optim.weight_decay=1"])
    assert same.dense_key() == base.dense_key()
    ticket = base.with_overrides(["recipe=ticket", "prune.rate=0.8", "prune.scope=layer"])
    assert ticket.dense_key() == base.dense_key()
    assert base.with_overrides(["task.p=97"]).dense_key() != base.dense_key()


def test_base_overrides_describe_the_dense_run_behind_a_ticket():
    ticket = ExperimentConfig().with_overrides(
        ["recipe=ticket", "base.optim.weight_decay=1", "optim.weight_decay=0"])
    assert ticket.optim.weight_decay == 0.0
    assert ticket.dense_base().optim.weight_decay == 1.0
    assert ticket.dense_key() == ExperimentConfig().dense_key()
    plain = ExperimentConfig().with_overrides(["recipe=ticket", "optim.weight_decay=0"])
    assert plain.dense_base().optim.weight_decay == 0.0


def test_a_tickets_budget_cadence_and_early_stop_never_reach_its_dense_run():
    ticket = ExperimentConfig().with_overrides(
        ["recipe=ticket", "train.steps=10000", "train.eval_every=50", "train.stop_margin=100",
         "optim.lr=0.002", "task.p=59", "model.d_hidden=40"])
    base = ticket.dense_base()
    assert base.train == ExperimentConfig().train  # the paper's 30k steps, every 10, no stop
    assert (base.optim.lr, base.task.p, base.model.d_hidden) == (0.002, 59, 40)  # these flow
    assert ticket.dense_key() == ExperimentConfig().with_overrides(
        ["optim.lr=0.002", "task.p=59", "model.d_hidden=40"]).dense_key()
    shorter = ticket.with_overrides(["base.train.steps=20000"])
    assert shorter.dense_base().train.steps == 20000 and shorter.train.steps == 10000


def test_round_trip_through_dict():
    c = ExperimentConfig().with_overrides(["recipe=ticket", "prune.step=2000", "base.train.steps=40000"])
    assert ExperimentConfig.from_dict(c.to_dict()) == c


@pytest.mark.parametrize("override, message", [
    ("optim.lrr=0.1", "did you mean 'optim.lr'"),
    ("task.opp=add", "did you mean 'task.op'"),
    ("task.op=dvi", "did you mean 'div'"),
    ("task.name=cifar10", "choose one of modular"),
    ("model.name=mpl", "did you mean 'mlp'"),
    ("task.p=seven", "expected an integer"),
    ("optim.lr=fast", "expected a finite number"),
    ("train.steps=1.5", "expected an integer"),
    ("task.p=2", "at least 3"),
    ("task.train_fraction=1.0", "(0, 1)"),
    ("task.train_fraction=0", "(0, 1)"),
    ("prune.rate=1.0", "[0, 1)"),
    ("prune.rate=-0.1", "[0, 1)"),
    ("prune.step=soon", "integer or 'final'"),
    ("prune.scope=local", "global, layer"),
    ("optim.lr", "malformed override"),
    ("model.pos_embed=false", "transformer only"),
])
def test_bad_values_give_one_clear_line(override, message):
    with pytest.raises(ConfigError) as info:
        ExperimentConfig().with_overrides([override])
    assert message in str(info.value)
    assert "\n" not in str(info.value)


def test_a_task_picks_its_model_unless_model_name_says_otherwise():
    """model.name not given: the task's model (lstm for text, mlp for the others); a copy that
    changes task.name takes the new task's model; a model that does not fit is one line."""
    text = ExperimentConfig().with_overrides(["task.name=text"])
    assert text.model.name == "lstm"
    assert text.with_overrides(["task.name=digits"]).model.name == "mlp"
    assert ExperimentConfig().with_overrides(["task.name=parity"]).model.name == "mlp"
    assert ExperimentConfig().model.name == "mlp"
    # naming the task's own model is the same run as not naming it
    assert text.dense_key() == ExperimentConfig().with_overrides(
        ["task.name=text", "model.name=lstm"]).dense_key()
    assert ExperimentConfig().dense_key() == ExperimentConfig().with_overrides(
        ["model.name=mlp"]).dense_key()
    transformer = ExperimentConfig().with_overrides(["model.name=transformer"])
    assert transformer.dense_key() != ExperimentConfig().dense_key()
    assert ExperimentConfig.from_dict(text.to_dict()) == text
    for overrides, message in ((["task.name=text", "model.name=mlp"], "takes model.name=lstm"),
                               (["task.name=digits", "model.name=lstm"], "takes model.name=mlp")):
        with pytest.raises(ConfigError) as info:
            ExperimentConfig().with_overrides(overrides)
        assert message in str(info.value) and "\n" not in str(info.value)


def test_division_needs_a_prime():
    ExperimentConfig().with_overrides(["task.op=mul", "task.p=66"])  # fine: no inverse needed
    with pytest.raises(ConfigError, match="prime"):
        ExperimentConfig().with_overrides(["task.op=div", "task.p=66"])


def test_ticket_step_must_be_a_checkpoint_of_the_dense_run():
    ExperimentConfig().with_overrides(["recipe=ticket", "prune.step=28000"])
    with pytest.raises(ConfigError, match="not a checkpoint"):
        ExperimentConfig().with_overrides(["recipe=ticket", "prune.step=32000"])
    with pytest.raises(ConfigError, match="not a checkpoint"):
        ExperimentConfig().with_overrides(["recipe=ticket", "prune.step=2001"])
    ExperimentConfig().with_overrides(
        ["recipe=ticket", "prune.step=32000", "base.train.steps=40000"])


def test_base_keys_only_for_tickets_and_only_optim_or_train():
    with pytest.raises(ConfigError, match="only a ticket"):
        ExperimentConfig().with_overrides(["base.optim.lr=0.01"])
    with pytest.raises(ConfigError, match="optim / train"):
        ExperimentConfig().with_overrides(["recipe=ticket", "base.task.p=97"])
    with pytest.raises(ConfigError, match="did you mean"):
        ExperimentConfig().with_overrides(["recipe=ticket", "base.optim.wd=0"])


def test_recipe_traits_declare_what_configs_know_of_each_recipe():
    from grok_core.config import MASK_RECIPES, RECIPE_TRAITS, RECIPES

    assert RECIPES == ("dense", "ticket", "norm_control", "edge_popup")
    assert MASK_RECIPES == ("ticket", "norm_control", "edge_popup")
    assert set(RECIPE_TRAITS) == set(RECIPES)
    edge = ExperimentConfig().with_overrides(["recipe=edge_popup"])
    assert edge.start_step == 1000 and edge.dense_base().train.steps == 1000
    assert edge.needs_dense_base and edge.learns_masks
    assert not edge.with_overrides(["edge_popup.variant=wd"]).learns_masks
    ticket = ExperimentConfig().with_overrides(["recipe=ticket", "prune.step=0"])
    assert ticket.start_step == 0 and not ticket.needs_dense_base and not ticket.learns_masks
    assert ticket.dense_base().train.steps == 30_000


@pytest.mark.parametrize("overrides, message", [
    (["recipe=edge_popup", "prune.scope=layer"],
     "prune.scope: does not apply to recipe edge_popup (its scores are learned from theta_mem at "
     "edge_popup.start_step, ranked per tensor); only prune.rate does"),
    (["recipe=edge_popup", "edge_popup.start_step=1001", "base.train.steps=3000"],
     "edge_popup.start_step: 1001 is not a checkpoint of the dense run (steps 0...3000, every "
     "2000); set base.train.checkpoint_every or base.train.steps so that it keeps step 1001"),
    (["recipe=norm_control", "prune.step=2001"],
     "prune.step: 2001 is not a checkpoint of the dense run (steps 0...30000, every 2000, or "
     "'final')"),
    (["recipe=ticket", "prune.step=final", "base.train.steps=-3"],
     "train.steps: must be at least 1, got -3"),
])
def test_recipe_checks_name_the_key_and_the_fix(overrides, message):
    with pytest.raises(ConfigError) as error:
        ExperimentConfig().with_overrides(overrides)
    assert str(error.value) == message
