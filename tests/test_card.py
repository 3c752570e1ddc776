"""The model card: metadata the Hub indexes, figures measured when the card is made, usage, citations, training."""

from __future__ import annotations

import re

import pytest
import torch
from huggingface_hub import ModelCard

from st_generalized_pooling import convert, save_model, verify_equivalence
from st_generalized_pooling.card import TEMPLATE, make_card, read_card, training_record
from st_generalized_pooling.pooling import MultiHeadGeneralizedPooling

BASE_CARD = """---
language:
- multilingual
- ar
- de
- en
license: apache-2.0
library_name: sentence-transformers
---

# a base model
"""


@pytest.fixture
def converted(distil_model):
    return convert(distil_model, num_heads=4, seed=0)


@pytest.fixture
def base_card(tmp_path) -> ModelCard:
    (tmp_path / "base").mkdir()
    (tmp_path / "base" / "README.md").write_text(BASE_CARD, encoding="utf-8")
    return read_card(str(tmp_path / "base"))


def render(model, base, tmp_path, **kwargs) -> ModelCard:
    folder = save_model(model, tmp_path / "upload", self_contained=True, create_model_card=False)
    return make_card(model, base, folder, "alice/tiny-mhgp", **kwargs)


def figures(card: ModelCard) -> tuple[float, float]:
    """(max |diff|, min cosine) from the card's equivalence table."""
    row = re.search(r"\|---\|---\|\n\| (\S+) \| (\S+) \|", card.text)
    return float(row[1]), float(row[2])


def test_metadata_has_hub_fields_and_base_license_and_languages(distil_model, converted, base_card, tmp_path):
    card = render(converted, distil_model, tmp_path, base_model="org/tiny-base", base_card=base_card, seed=0)
    data = ModelCard(str(card)).data  # parse the rendered text back, as the Hub does
    assert data.library_name == "sentence-transformers"
    assert data.pipeline_tag == "sentence-similarity"
    assert {"sentence-transformers", "feature-extraction", "generalized-pooling"} <= set(data.tags)
    assert data.base_model == "org/tiny-base"
    assert data.license == "apache-2.0"
    assert data.language == ["multilingual", "ar", "de", "en"]


def test_without_base_card_license_and_language_are_left_out(distil_model, converted, tmp_path):
    data = ModelCard(str(render(converted, distil_model, tmp_path))).data
    assert data.license is None and data.language is None and data.base_model is None


def test_equivalence_figures_are_measured_when_the_card_is_made(distil_model, converted, tmp_path):
    report = verify_equivalence(distil_model, converted)
    max_diff, min_cosine = figures(render(converted, distil_model, tmp_path / "a"))
    assert max_diff == pytest.approx(report.max_abs_diff, rel=1e-2, abs=1e-12) and max_diff <= 1e-6
    assert min_cosine == pytest.approx(report.min_cosine, abs=1e-9)

    pooling = next(m for m in converted.children() if isinstance(m, MultiHeadGeneralizedPooling))
    with torch.no_grad():
        pooling.w2.normal_(0, 1.0)  # no longer mean pooling: the card must say so
    max_diff, min_cosine = figures(render(converted, distil_model, tmp_path / "b"))
    assert max_diff > 1e-3 and min_cosine < 1


def test_figures_are_float32_for_a_half_precision_model(distil_model, converted, tmp_path):
    max_diff, _ = figures(render(converted.half(), distil_model, tmp_path))
    assert max_diff < 1e-2  # fp16 weights measured in float32: only the rounding of the weights shows


def test_card_describes_architecture_usage_and_citations(distil_model, converted, tmp_path):
    text = render(converted, distil_model, tmp_path, base_model="org/tiny-base", seed=7).text
    assert 'SentenceTransformer("alice/tiny-mhgp", trust_remote_code=True)' in text
    assert "from st_generalized_pooling import load_model" in text and 'load_model("alice/tiny-mhgp")' in text
    assert "`generalized_pooling.MultiHeadGeneralizedPooling`" in text and "`2_Dense`" in text
    assert "4 heads x 8 dimensions" in text and "dense layer 32 -> 16, activation Tanh" in text
    assert 'initialization="mean"`, `seed=7`' in text and "W2 = 0 and b2 = 0" in text
    assert "Enhancing Sentence Embedding with Generalized Pooling" in text and "1806.09828" in text
    assert "Chen, Qian and Ling, Zhen-Hua and Zhu, Xiaodan" in text
    assert "Sentence-BERT: Sentence Embeddings using Siamese BERT-Networks" in text
    assert "## Training" not in text


def test_training_record_appears_when_the_pooling_was_trained(distil_model, converted, tmp_path):
    pooling = next(m for m in converted.children() if isinstance(m, MultiHeadGeneralizedPooling))
    pooling.training_details = {"dataset": "apt de-en pairs", "epochs": 2}
    assert training_record(pooling) == {"dataset": "apt de-en pairs", "epochs": 2}
    text = render(converted, distil_model, tmp_path).text
    assert "## Training" in text and "**dataset:** apt de-en pairs" in text and "**epochs:** 2" in text


def test_model_published_as_given_says_so(distil_model, converted, tmp_path):
    text = render(converted, distil_model, tmp_path, converted=False).text
    assert "published as it was given" in text and "exact mean-pooling" not in text


def test_template_ships_with_the_package():
    assert TEMPLATE.is_file() and "{{ card_data }}" in TEMPLATE.read_text(encoding="utf-8")
