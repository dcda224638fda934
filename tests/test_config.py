"""Every yaml composes into the typed schema; typos, wrong types and bad values fail naming the key."""

import itertools
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra.errors import ConfigCompositionException
from omegaconf.errors import OmegaConfBaseException

from jaxalign.config import DATA_CONFIGS, Config, ConfigError, register_configs, to_config

CONF = Path(__file__).resolve().parent.parent / "conf"
register_configs()

REQUIRED = {
    "arrays": ["data.path=x.npz"],
    "timit": ["data.root=/corpus"],
    "corpus": ["data.root=/corpus", "data.dictionary=/dictionary.txt"],
}


def make(overrides, **kw):
    with initialize_config_dir(config_dir=str(CONF), version_base=None):
        return compose(config_name="config", overrides=overrides, **kw)


def group_options(group):
    return sorted(p.stem for p in (CONF / group).glob("*.yaml"))


def test_default_config_is_typed():
    config = to_config(make([]))
    assert isinstance(config, Config)
    assert (config.setup.name, config.data.name, config.align.schedule) == ("order_sync", "digit_strips", "per_step")


# model option -> (kind, num_layers, bidirectional), as each file's comment names the net
MODELS = {
    "bigru": ("gru", 1, True),
    "bigru2": ("gru", 2, True),
    "bilstm": ("lstm", 1, True),
    "elman": ("simple", 1, False),
    "gru": ("gru", 1, False),
    "gru2": ("gru", 2, False),
    "lstm": ("lstm", 1, False),
    "mlp": ("mlp", 2, False),
}


@pytest.mark.parametrize("group", ["setup", "model", "data", "optim"])
def test_every_group_option_composes(group):
    if group == "model":
        assert set(group_options(group)) == set(MODELS)
    for option in group_options(group):
        overrides = [f"{group}={option}"] + REQUIRED.get(option, [])
        if group == "setup" and option in ("one_to_one", "one_to_many"):
            overrides.append("model=mlp")
        if group == "model" and option == "mlp":
            overrides.append("setup=one_to_one")
        node = getattr(to_config(make(overrides)), group)
        if group == "model":
            assert (node.kind, node.num_layers, node.bidirectional) == MODELS[option], option
        else:
            assert node.name == option
        if group == "data":
            assert type(node) is DATA_CONFIGS[option]


@pytest.mark.parametrize("experiment", group_options("experiment"))
def test_every_experiment_composes(experiment):
    cfg = make([f"+experiment={experiment}"], return_hydra_config=True)
    to_config(_without_hydra(cfg))


@pytest.mark.parametrize("debug", group_options("debug"))
def test_debug_configs_compose(debug):
    assert to_config(make([f"+debug={debug}"])).trainer.steps <= 100


@pytest.mark.parametrize("launcher", [p.stem for p in (CONF / "hydra" / "launcher").glob("*.yaml")])
def test_launcher_configs_compose(launcher):
    cfg = make([f"hydra/launcher={launcher}"], return_hydra_config=True)
    assert cfg.hydra.launcher._target_


def _without_hydra(cfg):
    from omegaconf import OmegaConf, open_dict

    cfg = OmegaConf.create(OmegaConf.to_container(cfg))
    with open_dict(cfg):
        cfg.pop("hydra", None)
    return OmegaConf.merge(OmegaConf.structured(Config), cfg)


def test_sweep_files_define_sweeper_params():
    cfg = make(["+experiment=sweep_schedules"], return_hydra_config=True)
    assert set(cfg.hydra.sweeper.params) == {"+schedule", "align.states_per_symbol", "seed"}


def sweep_jobs(experiment, extra=()):
    """The override lists of every job of a shipped sweep, as Hydra's basic sweeper expands them."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    params = make([f"+experiment={experiment}", *extra], return_hydra_config=True).hydra.sweeper.params
    parsed = OverridesParser.create().parse_overrides([f"{k}={v}" for k, v in params.items()])
    axes = [[f"{o.get_key_element()}={value}" for value in o.sweep_string_iterator()] for o in parsed]
    return [list(job) for job in itertools.product(*axes)]


@pytest.mark.slow
@pytest.mark.parametrize(
    "experiment, extra, jobs",
    [
        ("sweep_schedules", [], 36),
        ("sweep_schedules", ["data=spoken_words"], 36),
        ("sweep_schedules", ["+debug=tiny", "data.num_train=128"], 36),
        ("sweep_speech", [], 18),
        ("sweep_weighting", [], 12),
        ("sweep_weighting", ["+debug=tiny", "data.num_train=256"], 12),
        ("sweep_bidirectional", [], 6),
        ("sweep_bidirectional", ["data=spoken_words"], 6),
        ("sweep_bidirectional", ["+debug=tiny", "data.num_train=128"], 6),
        ("sweep_setups", [], 30),
        ("sweep_setups", ["+debug=tiny", "data.num_train=128"], 30),
    ],
)
def test_every_job_of_a_shipped_sweep_composes(experiment, extra, jobs):
    """Each job of each ablation sweep (and its documented variants) is a valid config that sets
    what the sweep says it varies."""
    expanded = sweep_jobs(experiment, extra)
    assert len(expanded) == jobs
    seen = set()
    with initialize_config_dir(config_dir=str(CONF), version_base=None):
        configs = [
            to_config(compose(config_name="config", overrides=[f"+experiment={experiment}", *extra, *job]))
            for job in expanded
        ]
    for config in configs:
        seen.add((config.align.schedule, config.align.init, config.align.topology, config.align.aligner_context, config.align.states_per_symbol, config.setup.weighting,
                  config.model.bidirectional, config.data.name, config.seed, config.setup.name, config.setup.attention,
                  config.data.target_order))  # fmt: skip
        if "+debug=tiny" in extra:
            assert config.trainer.steps <= 100
    assert len(seen) == jobs  # no two jobs run the same config


@pytest.mark.parametrize(
    "override, key",
    [
        ("trainer.stepz=3", "stepz"),
        ("trainer.steps=abc", "steps"),
        ("model.bidirectional=maybe", "bidirectional"),
        ("optim.learning_rate=fast", "learning_rate"),
        ("setup=no_such_setup", "setup"),
    ],
)
def test_typos_and_wrong_types_fail_at_composition_naming_the_key(override, key):
    with pytest.raises((ConfigCompositionException, OmegaConfBaseException)) as err:
        make([override])
    assert key in str(err.value) + str(err.value.__cause__)


@pytest.mark.parametrize(
    "override, key",
    [
        ("align.schedule=sometimes", "align.schedule"),
        ("align.method=greedy", "align.method"),
        ("align.kernel=cuda", "align.kernel"),
        ("align.method=masked align.kernel=pallas", "align.kernel=pallas"),
        ("align.states_per_symbol=0", "align.states_per_symbol"),
        ("align.pause_states=0", "align.pause_states"),
        ("align.pause_probability=1", "align.pause_probability"),
        ("align.pause_probability=0", "align.pause_probability"),
        ("align.pronunciation_sum=true align.schedule=full_sum", "align.pronunciation_sum"),
        ("align.pronunciation_sum=true align.aligner_context=-1", "align.pronunciation_sum"),
        ("model.kind=transformer", "model.kind"),
        ("model.dropout=1.5", "model.dropout"),
        ("optim.learning_rate=-1", "optim.learning_rate"),
        ("trainer.steps=0", "trainer.steps"),
        ("setup.weighting=middle", "setup.weighting"),
        ("align.schedule=realign_list", "align.realign_at"),
        ("setup=time_sync align.schedule=ctc", "align.schedule=ctc"),
        ("+model.widht=3", "model.widht"),
        ("+learning_rate=3", "learning_rate"),
    ],
)
def test_bad_values_fail_before_training_naming_the_key(override, key):
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        to_config(make(override.split()))


def test_the_local_aligner_serves_per_step_realignment_after_a_flat_start_only():
    from jaxalign.setups import make_setup

    assert make_setup(to_config(make([])), 10).aligner_context == 3  # the shipped default
    for overrides in (
        ["align.schedule=ctc"],
        ["align.schedule=full_sum"],
        ["align.init=ctc_warmup"],
        ["align.schedule=per_epoch"],
        ["align.aligner_context=-1"],
    ):
        assert make_setup(to_config(make(overrides)), 10).aligner_context is None, overrides


def test_a_run_saved_with_the_retired_xla_flags_key_still_loads(tmp_path):
    from jaxalign.config import load_config, save_config
    from tests.helpers import tiny_config

    config = tiny_config()
    save_config(config, tmp_path / "config.yaml")
    with (tmp_path / "config.yaml").open("a") as f:
        f.write("xla_flags: ''\n")
    assert load_config(tmp_path / "config.yaml") == config


def test_a_corpus_aligns_unknown_words_as_spn_by_default_and_names_the_choices():
    corpus = ["data=corpus", "data.root=/corpus", "data.dictionary=/dictionary.txt"]
    assert to_config(make(corpus)).data.oov == "spn"
    with pytest.raises(ConfigError, match=r"data\.oov") as err:
        to_config(make([*corpus, "data.oov=ignore"]))
    assert all(choice in str(err.value) for choice in ("spn", "skip", "espeak", "error"))


def test_a_run_saved_before_pause_blocks_loads_with_one_row_pauses(tmp_path):
    """A saved config without align.pause_states (a run trained on one-row pauses, whose net never
    learnt the silence's other sub-state columns) loads with 1, the default; a saved value is kept."""
    from omegaconf import OmegaConf

    from jaxalign.config import load_config, save_config
    from tests.helpers import tiny_config

    config = tiny_config(align={"pause_states": 4})
    save_config(config, tmp_path / "config.yaml")
    assert load_config(tmp_path / "config.yaml").align.pause_states == 4
    raw = OmegaConf.load(tmp_path / "config.yaml")
    del raw.align["pause_states"]
    OmegaConf.save(raw, tmp_path / "config.yaml")
    assert load_config(tmp_path / "config.yaml").align.pause_states == 1
