"""Saving and loading converted models: lossless, atomic, and a loader that runs no code from the model."""

from __future__ import annotations

import json
import os

import pytest
import torch
from tiny_models import SENTENCES
from sentence_transformers import SentenceTransformer

from st_generalized_pooling import MultiHeadGeneralizedPooling, UnsafeModelError, convert, load_model, save_model
from st_generalized_pooling.loading import find_generalized_pooling, is_generalized_pooling, package_version


def embed(model: SentenceTransformer) -> torch.Tensor:
    return model.encode(SENTENCES, convert_to_tensor=True, show_progress_bar=False)


@pytest.fixture
def trained(distil_model) -> SentenceTransformer:
    """A converted model after a few optimizer steps through the whole model, so no weight is at its init."""
    model = convert(distil_model, num_heads=4, seed=0)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    features = model.preprocess(SENTENCES)
    for _ in range(3):
        optimizer.zero_grad()
        model(dict(features))["sentence_embedding"].pow(2).sum().backward()
        optimizer.step()
    model.eval()
    return model


def assert_same_weights(a: SentenceTransformer, b: SentenceTransformer) -> None:
    state_a, state_b = a.state_dict(), b.state_dict()
    assert state_a.keys() == state_b.keys()
    for name, tensor in state_a.items():
        assert torch.equal(tensor, state_b[name]), name


def test_save_then_load_restores_trained_weights_bit_for_bit(trained, tmp_path):
    assert not trained[1].w2.eq(0).all()
    save_model(trained, tmp_path / "model")
    loaded = SentenceTransformer(str(tmp_path / "model"), trust_remote_code=True)
    assert isinstance(loaded[1], MultiHeadGeneralizedPooling)
    assert_same_weights(trained, loaded)
    assert torch.equal(embed(trained), embed(loaded))


def test_sentence_transformers_requires_trust_remote_code_for_the_module(trained, tmp_path):
    save_model(trained, tmp_path / "model")
    with pytest.raises(ValueError, match="trust_remote_code=True"):
        SentenceTransformer(str(tmp_path / "model"))


def test_load_save_load_round_trip(trained, tmp_path):
    save_model(trained, tmp_path / "first")
    SentenceTransformer(str(tmp_path / "first"), trust_remote_code=True).save(str(tmp_path / "second"))
    assert_same_weights(trained, SentenceTransformer(str(tmp_path / "second"), trust_remote_code=True))


def test_saved_folder_holds_safetensors_and_the_package_version(trained, tmp_path):
    path = save_model(trained, tmp_path / "model")
    files = [os.path.join(root, name) for root, _, names in os.walk(path) for name in names]
    assert not [f for f in files if f.endswith((".bin", ".pt", ".pth", ".pkl"))]
    assert (path / "1_MultiHeadGeneralizedPooling" / "model.safetensors").exists()
    config = json.loads((path / "config_sentence_transformers.json").read_text())
    assert config["__version__"]["st-generalized-pooling"] == package_version()


def test_self_contained_folder_loads_from_its_own_copy_and_survives_a_resave(trained, tmp_path):
    path = save_model(trained, tmp_path / "model", self_contained=True)
    assert (path / "generalized_pooling.py").read_bytes() == open(
        __import__("st_generalized_pooling.pooling").pooling.__file__, "rb"
    ).read()
    types = [entry["type"] for entry in json.loads((path / "modules.json").read_text())]
    assert types[1] == "generalized_pooling.MultiHeadGeneralizedPooling"
    remote = SentenceTransformer(str(path), trust_remote_code=True)
    assert type(remote[1]).__module__.startswith("transformers_modules.")  # the folder's copy, not the package
    assert is_generalized_pooling(remote[1]) and find_generalized_pooling(remote) is remote[1]
    assert not is_generalized_pooling(remote[2])
    assert torch.equal(embed(remote), embed(trained))
    # sentence-transformers copies the source into the module subfolder only; the module puts it at the root.
    remote.save(str(tmp_path / "resaved"))
    assert (tmp_path / "resaved" / "generalized_pooling.py").exists()
    assert_same_weights(trained, SentenceTransformer(str(tmp_path / "resaved"), trust_remote_code=True))
    assert_same_weights(trained, load_model(str(tmp_path / "resaved")))


def test_load_model_runs_no_code_from_the_model_folder(trained, tmp_path):
    path = save_model(trained, tmp_path / "model", self_contained=True)
    (path / "generalized_pooling.py").write_text("raise RuntimeError('repo code was executed')\n")
    loaded = load_model(str(path))
    assert type(loaded[1]) is MultiHeadGeneralizedPooling  # this package's class
    assert torch.equal(embed(loaded), embed(trained))
    with pytest.raises(RuntimeError, match="repo code was executed"):
        SentenceTransformer(str(path), trust_remote_code=True)


def test_load_model_loads_plain_sentence_transformers_models(distil_model, tmp_path):
    distil_model.save(str(tmp_path / "plain"))
    assert torch.equal(embed(load_model(str(tmp_path / "plain"))), embed(distil_model))


def test_load_model_refuses_foreign_module_types(trained, tmp_path):
    path = save_model(trained, tmp_path / "model")
    modules = json.loads((path / "modules.json").read_text())
    modules[2]["type"] = "evil_module.Backdoor"
    (path / "modules.json").write_text(json.dumps(modules))
    with pytest.raises(UnsafeModelError, match=r"\['evil_module.Backdoor'\].*would run code"):
        load_model(str(path))
    with pytest.raises(UnsafeModelError, match="never runs repo code"):
        load_model(str(path), trust_remote_code=True)
    with pytest.raises(UnsafeModelError, match="no modules.json"):
        load_model(str(tmp_path))


def test_save_model_refuses_to_overwrite_and_never_leaves_half_a_model(trained, tmp_path, monkeypatch):
    target = tmp_path / "model"
    target.mkdir()
    (target / "precious.txt").write_text("keep me")
    with pytest.raises(FileExistsError, match="not empty"):
        save_model(trained, target)

    def fail(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(MultiHeadGeneralizedPooling, "save", fail)
    with pytest.raises(OSError, match="disk full"):
        save_model(trained, target, overwrite=True)
    assert [p.name for p in target.iterdir()] == ["precious.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]  # no staging folder left behind


def test_save_model_finalize_runs_on_the_complete_folder_before_it_appears(trained, tmp_path):
    seen = []

    def add_card(folder):
        seen.append(sorted(p.name for p in folder.iterdir()))
        (folder / "README.md").write_text("a card")

    path = save_model(trained, tmp_path / "model", create_model_card=False, finalize=add_card)
    assert "modules.json" in seen[0] and "README.md" not in seen[0]
    assert (path / "README.md").read_text() == "a card"

    def fail(folder):
        raise ValueError("the base model's card could not be read")

    with pytest.raises(ValueError, match="could not be read"):
        save_model(trained, tmp_path / "other", finalize=fail)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]
