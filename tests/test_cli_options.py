"""Each option is described once: default, help and range in a dataclass field's metadata (or a
constructor's ``Annotated`` parameter), read by the generator in ``fakeproof.cli_options``; the
face-engine options in one group (``fakeproof.engine_options.EngineOptions``) that every command that
embeds takes; no option of before lost or renamed."""
from __future__ import annotations

from dataclasses import dataclass, fields

import pytest
import typer
from typer.testing import CliRunner

from fakeproof.cli import app
from fakeproof.cli_errors import HandledGroup
from fakeproof.cli_options import config_options, field_specs, option
from fakeproof.engine_options import EngineOptions, engine_options

# every option these commands had before the engine options became one group (fakeproof 0.3's CLI)
BEFORE = {
    "infer score-folders": "--batch-size --cache --detector --device --margin --model --models-dir --no-cache --no-progress --out --progress --raw --report --runtime --weights --workers -m",
    "infer score-pairs": (
        "--batch-size --cache --column-a --column-b --detector --device --margin --model --models-dir --no-cache --no-progress --out "
        "--progress --raw --root --runtime --weights --workers -m"
    ),
    "infer compare": "--cache --detector --device --margin --model --models-dir --no-cache --out --raw --runtime --threshold --weights -m",
    "infer export-onnx": "--model --models-dir --opset --out --weights -m",
    "infer benchmark": "--device --json --limit --model --no-peer --peer --repeats --runtime --sizes --workers -m",
    "curate clean": "--device --encoder --fake-threshold --max-heatmaps --model --models-dir --out --threshold --weights -m",
    "generate check": "--device --encoder --model -m",
    "models list": "--json --models-dir",
    "models prepare": "--encoder --model -m",
    # --head-false-alarm (a fixed share of flagged real photos) gave way to --gate-eer-budget (issue 20: the gate under a 0.5-pt EER budget)
    "train run": (
        "--accum-steps --amp --artefact-corpus --artefact-head --batch-size --bn --config --detector --device --encoder --epochs --flip "
        "--freeze-blocks --hard-fakes --head-batch --head-blocks --head-lr --head-selfblend --holdout-backend --l2sp "
        "--loss --lr --margin-alpha --margin-base --max-minutes --max-pairs-per-identity --max-steps --model --models-dir --no-amp "
        "--no-artefact-head --no-flip --no-progress --out --pairs --plateau-factor --plateau-patience --plateau-threshold --progress "
        "--resume --scale --seed --tune --val-batch-size --val-every --val-fraction --weight-decay --weights -m"
    ),
    "demo": "--batch-size --export-onnx --fakes --freeze-blocks --fresh --identities --lr --no-export-onnx --noise --out --photos --seed --threshold --train-minutes --train-steps --val-fraction",
}
EMBEDDING = [c for c in BEFORE if c.startswith(("infer", "curate", "generate"))]


def _command(path: str):
    cmd = typer.main.get_command(app)
    for name in path.split():
        cmd = cmd.commands[name]
    return cmd


def _options(cmd) -> dict[str, object]:
    return {o: p for p in cmd.params if getattr(p, "param_type_name", "") == "option" for o in p.opts + p.secondary_opts}


@pytest.mark.parametrize("path", sorted(BEFORE))
def test_no_option_is_lost_or_renamed(path):
    lost = set(BEFORE[path].split()) - set(_options(_command(path)))
    assert not lost, f"{path} lost {sorted(lost)}"


@pytest.mark.parametrize("path", EMBEDDING)
def test_every_embedding_command_describes_its_engine_options_as_the_group_does(path):
    opts = _options(_command(path))
    specs = {s.flag: s for s in field_specs(EngineOptions)}
    shared = [f for f in specs if f in opts]
    assert "--model" in shared, shared
    for flag in shared:
        if flag == "--model" and path in ("curate clean", "generate check"):
            continue  # they say what the model is for; the rest say it as the group does
        p = opts[flag]
        assert p.help.startswith(specs[flag].opt.help), (path, flag, p.help)
        if specs[flag].default is not None:
            assert p.default == specs[flag].default, (path, flag)


def test_the_engine_group_is_what_every_infer_command_receives():
    got = {}

    demo = typer.Typer(cls=HandledGroup)

    @demo.command("a")
    @engine_options(("model", "batch_size", "cache", "margin"))
    def a(name: str = typer.Option("x", "--name"), engine: EngineOptions = None):
        got["engine"], got["name"] = engine, name

    @demo.command("b")
    def b():
        pass

    res = CliRunner().invoke(demo, ["a", "--batch-size", "8", "--no-cache", "-m", "facenet", "--name", "y"])
    assert res.exit_code == 0, res.output
    e = got["engine"]
    assert isinstance(e, EngineOptions) and (e.model, e.batch_size, e.cache, e.margin, got["name"]) == ("facenet", 8, False, None, "y")
    assert e.detector == "mtcnn" and e.device == "auto"  # not offered by this command: the group's defaults
    res = CliRunner().invoke(demo, ["a", "--margin", "1.5"])
    assert res.exit_code == 2 and "--margin must be >= 0 and <= 1, got 1.5" in res.output
    res = CliRunner().invoke(demo, ["a", "--detector", "scrfd:x"])
    assert res.exit_code == 2 and "No such option" in res.output  # only what the command asked for
    assert [f.name for f in fields(EngineOptions)][:3] == ["model", "runtime", "device"]


@dataclass
class _Settings:
    out: str
    steps: int = option(3, "how many steps", min=1, max=10)
    rate: float = option(0.5, "how fast", min=0.0, lo_open=True)
    loud: bool = option(False, "say more")


def test_a_dataclass_field_is_an_option_with_its_default_help_and_range():
    got = {}
    demo = typer.Typer(cls=HandledGroup)

    @demo.command("go")
    @config_options(_Settings)
    def go(out: str = typer.Argument(...), config_values: dict = None):
        got.update(config_values, out=out)

    @demo.command("noop")
    def noop():
        pass

    r = CliRunner()
    res = r.invoke(demo, ["go", "--help"], terminal_width=200)
    assert res.exit_code == 0
    assert "how many steps [>= 1 and <= 10]" in res.output and "how fast [> 0]" in res.output and "--loud" in res.output and "--no-loud" in res.output
    res = r.invoke(demo, ["go", "o"])
    assert res.exit_code == 0 and got == {"out": "o", "steps": 3, "rate": 0.5, "loud": False}
    res = r.invoke(demo, ["go", "o", "--steps", "11"])
    assert res.exit_code == 2 and "error: --steps must be >= 1 and <= 10, got 11" in res.output
    res = r.invoke(demo, ["go", "o", "--rate", "0"])
    assert res.exit_code == 2 and "--rate must be > 0, got 0" in res.output


def test_an_engine_option_out_of_range_is_one_line_before_any_work(tmp_path):
    res = CliRunner().invoke(app, ["curate", "clean", str(tmp_path / "no-such-dataset"), "--workers", "0"])
    assert res.exit_code == 2 and "--workers must be >= 1, got 0" in res.output
    res = CliRunner().invoke(app, ["infer", "score-pairs", str(tmp_path / "none.csv"), "--margin", "-0.5"])
    assert res.exit_code == 2 and "--margin must be >= 0 and <= 1, got -0.5" in res.output
