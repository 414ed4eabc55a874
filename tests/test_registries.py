"""Every registry's names match what the configs and the CLI accept, so adding an entry in one
place and forgetting the other fails here, not in a user's sweep."""
import pytest

from grok_core import config
from grok_core.config import RECIPE_TRAITS
from grok_core.models.registry import MODEL_REGISTRY
from grok_core.pruning import SCORERS
from grok_core.recipes import RECIPE_REGISTRY
from grok_core.tasks import DATASET_BUILDERS
from search_spaces import get_study, study_names
from sweeps.cli import build_parser, main
from sweeps.commands import ALIASES, COMMANDS, command_module


def test_recipes_registry_matches_the_configs_recipes():
    assert set(RECIPE_REGISTRY) == set(config.RECIPES) == set(RECIPE_TRAITS)
    for name, recipe in RECIPE_REGISTRY.items():
        assert recipe.name == name
        # a recipe trains fresh dense runs exactly when its config takes no dense base run
        assert recipe.trains_dense_runs == (not recipe.traits.from_dense)


def test_models_tasks_and_methods_registries_match_the_configs_choices():
    assert set(MODEL_REGISTRY) == set(config.MODELS)
    assert set(DATASET_BUILDERS) == set(config.TASKS)
    assert set(SCORERS) == set(config.PRUNE_METHODS)


def test_every_command_is_a_module_with_arguments_and_a_runner():
    for name in COMMANDS:
        module = command_module(name)
        assert callable(module.add_arguments) and callable(module.run), name
    assert set(ALIASES.values()) <= set(COMMANDS)


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_every_registered_command_parses_its_help(command, capsys):
    """``grok COMMAND --help`` exits 0 and names the command: the registry and the parser
    agree (argparse exits through SystemExit on --help)."""
    with pytest.raises(SystemExit) as done:
        build_parser(command).parse_args([command, "--help"])
    assert done.value.code == 0
    assert command in capsys.readouterr().out


def test_grok_studies_lists_every_study_module(capsys):
    assert main(["studies"]) == 0
    listed = [line.split()[0] for line in capsys.readouterr().out.splitlines()]
    assert listed == study_names()
    for name in listed:
        assert get_study(name).DESCRIPTION
    assert main(["spaces"]) == 0  # the older spelling still works
    assert [line.split()[0] for line in capsys.readouterr().out.splitlines()] == listed


def test_an_unknown_command_is_one_line_and_exit_2(capsys):
    assert main(["swep", "headline"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("grok: error:") and len(err.strip().splitlines()) == 1
