"""The model card of a published model. The facts are gathered here: metadata, the architecture as saved, the
equivalence figures measured now, the base model's license and languages read from its own card, and the
pooling's training record. The prose is in the template ``model_card/template.md``."""

from __future__ import annotations

import copy
import importlib.resources
import json
import os
from pathlib import Path
from typing import Any

import sentence_transformers
import torch
import transformers
from huggingface_hub import ModelCard, ModelCardData
from sentence_transformers import SentenceTransformer
from sentence_transformers.base.modules import Dense, Normalize, Transformer
from sentence_transformers.util import load_file_path

from st_generalized_pooling.convert import EquivalenceReport, verify_equivalence
from st_generalized_pooling.loading import PACKAGE, find_generalized_pooling, is_generalized_pooling, package_version
from st_generalized_pooling.pooling import SOURCE_FILE_NAME, MultiHeadGeneralizedPooling

TEMPLATE = importlib.resources.files("st_generalized_pooling") / "model_card" / "template.md"
TAGS = [
    "sentence-transformers",
    "sentence-similarity",
    "feature-extraction",
    "generalized-pooling",
    "attention-pooling",
]


def read_card(name_or_path: str, **hub_kwargs: Any) -> ModelCard | None:
    """The README card of a model folder or Hub repo, or None when it has none. ``hub_kwargs`` (token, revision,
    cache_folder, local_files_only) go to the download."""
    path = load_file_path(name_or_path, "README.md", **hub_kwargs)
    return None if path is None else ModelCard.load(path, ignore_metadata_errors=True)


def training_record(pooling: MultiHeadGeneralizedPooling) -> dict[str, Any] | None:
    """The pooling's ``training`` config entry when it is a record (a dict), else None."""
    record = pooling.get_config_dict().get("training_details")
    return record if isinstance(record, dict) and record else None


def describe(module: torch.nn.Module) -> str:
    """One line saying what a module does, for the architecture table."""
    if isinstance(module, Transformer):
        config = module.auto_model.config
        parameters = sum(p.numel() for p in module.parameters())
        return (
            f"{type(module.auto_model).__name__} (`{config.model_type}`), {parameters:,} parameters: token embeddings"
        )
    if is_generalized_pooling(module):
        return (
            f"generalized pooling, {module.num_heads} heads x {module.head_dim} dimensions, attention MLP width "
            f"{module.hidden_dim}: sentence embedding of {module.embedding_dimension} dimensions"
        )
    if isinstance(module, Dense):
        activation = type(module.activation_function).__name__
        return f"dense layer {module.in_features} -> {module.out_features}, activation {activation}"
    if isinstance(module, Normalize):
        return "L2 normalisation of the sentence embedding"
    return f"{type(module).__name__}, {sum(p.numel() for p in module.parameters()):,} parameters"


def in_float32(model: SentenceTransformer) -> SentenceTransformer:
    """The model itself when all its weights are float32, else a float32 copy (the figures are float32's)."""
    if all(parameter.dtype == torch.float32 for parameter in model.parameters()):
        return model
    return copy.deepcopy(model).float()


def as_list(value: str | list[str] | None) -> list[str]:
    return [] if value is None else [value] if isinstance(value, str) else list(value)


def make_card(
    model: SentenceTransformer,
    base: SentenceTransformer,
    folder: str | os.PathLike,
    repo_id: str,
    base_model: str | None = None,
    base_card: ModelCard | None = None,
    converted: bool = True,
    seed: int | None = None,
) -> ModelCard:
    """Render the card of ``model`` as saved in ``folder`` (read for the module layout), to be published as
    ``repo_id``. ``base`` is the model it was made from: the equivalence figures are measured against it now.
    ``base_model`` is the base's Hub id and ``base_card`` its card (license, languages); ``converted`` says that the
    model was converted from ``base`` by this publish (``seed``: the seed of its W1), rather than published as given.
    """
    pooling = find_generalized_pooling(model)
    training = training_record(pooling)
    report: EquivalenceReport = verify_equivalence(in_float32(base), in_float32(model))
    base_data = base_card.data if base_card is not None else ModelCardData()
    languages = as_list(base_data.get("language"))
    card_data = ModelCardData(
        base_model=base_model,
        language=languages or None,
        license=base_data.get("license"),
        license_name=base_data.get("license_name"),
        license_link=base_data.get("license_link"),
        library_name="sentence-transformers",
        pipeline_tag="sentence-similarity",
        tags=TAGS,
    )
    entries = json.loads((Path(folder) / "modules.json").read_text(encoding="utf-8"))
    layout = list(zip(entries, model.children(), strict=True))
    modules = [
        {"index": entry["idx"], "path": entry["path"], "type": entry["type"], "description": describe(module)}
        for entry, module in layout
    ]
    versions = {
        PACKAGE: package_version(),
        "sentence_transformers": sentence_transformers.__version__,
        "transformers": transformers.__version__,
        "pytorch": torch.__version__,
    }
    return ModelCard.from_template(
        card_data,
        template_str=TEMPLATE.read_text(encoding="utf-8"),
        repo_id=repo_id,
        base_model=base_model,
        languages=languages,
        license=base_data.get("license"),
        converted=converted,
        seed=seed,
        output_dimension=model.get_embedding_dimension(),
        max_seq_length=model.max_seq_length,
        similarity_fn_name=model.similarity_fn_name,
        versions=versions,
        modules=modules,
        other_modules=[f"`{type(module).__name__}`" for _, module in layout if module is not pooling],
        architecture=repr(model),
        pooling_path=next(entry["path"] for entry, module in layout if module is pooling),
        source_file=SOURCE_FILE_NAME,
        pooling={
            **pooling.get_config_dict(),
            "head_dim": pooling.head_dim,
            "parameters": f"{sum(p.numel() for p in pooling.parameters()):,}",
        },
        equivalence={
            "max_abs_diff": report.max_abs_diff,
            "min_cosine": report.min_cosine,
            "num_sentences": report.num_sentences,
            "device": str(model.device),
        },
        training=training,
    )
