"""The private Ray Tune and Optuna details ``sweeps.ray_adapter`` relies on still exist: this
fails on the release that removes one, before a sweep does."""
import os

import optuna
from ray.tune.execution import class_cache
from ray.tune.search.optuna import OptunaSearch

from sweeps import ray_adapter


def test_tune_still_gives_trial_actors_the_lightning_variable():
    assert isinstance(class_cache.DEFAULT_ENV_VARS, dict)
    assert ray_adapter.LIGHTNING_ENV_VAR in class_cache.DEFAULT_ENV_VARS


def test_prestarted_workers_drops_the_variable_for_one_fit_only():
    before = dict(class_cache.DEFAULT_ENV_VARS)
    with ray_adapter.prestarted_workers():
        assert ray_adapter.LIGHTNING_ENV_VAR not in class_cache.DEFAULT_ENV_VARS
    assert class_cache.DEFAULT_ENV_VARS == before


def test_tune_settings_leave_the_environment_as_it_was(monkeypatch):
    monkeypatch.delenv("TUNE_GLOBAL_CHECKPOINT_S", raising=False)
    monkeypatch.setenv("TUNE_DISABLE_AUTO_CALLBACK_LOGGERS", "0")  # the user's own value wins
    with ray_adapter.tune_settings():
        assert os.environ["TUNE_GLOBAL_CHECKPOINT_S"] == "2"
        assert os.environ["TUNE_DISABLE_AUTO_CALLBACK_LOGGERS"] == "0"
    assert "TUNE_GLOBAL_CHECKPOINT_S" not in os.environ
    assert os.environ["TUNE_DISABLE_AUTO_CALLBACK_LOGGERS"] == "0"


def test_optuna_search_and_study_keep_the_attributes_we_read(tmp_path):
    storage = optuna.storages.RDBStorage(f"sqlite:///{tmp_path / 'study.db'}")
    study = optuna.create_study(study_name="s", storage=storage, direction="maximize")
    searcher = OptunaSearch(space={"x": optuna.distributions.FloatDistribution(0, 1)},
                            metric="m", mode="max", study_name="s", storage=storage)
    searcher.suggest("trial-1")
    trial = ray_adapter.searcher_trials(searcher)["trial-1"]
    assert ray_adapter.searcher_told(searcher) is not None
    assert ray_adapter.searcher_storage(searcher) is storage
    assert isinstance(ray_adapter.storage_trial_id(trial), int)
    assert ray_adapter.study_storage(study) is not None
    searcher.on_trial_complete("trial-1", {"m": 1.0})
    assert "trial-1" in ray_adapter.searcher_told(searcher)
