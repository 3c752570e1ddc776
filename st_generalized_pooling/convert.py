"""Turn a mean-pooling SentenceTransformer into one with generalized pooling, and check they agree."""

from __future__ import annotations

import copy
from dataclasses import dataclass

import torch
from sentence_transformers import SentenceTransformer
from sentence_transformers.sentence_transformer.modules import Pooling

from st_generalized_pooling.errors import ConversionError, GeneralizedPoolingError
from st_generalized_pooling.loading import is_generalized_pooling
from st_generalized_pooling.pooling import Initialization, MultiHeadGeneralizedPooling

# A built-in multilingual sample for the equivalence check: short UI strings and sentences, mixed
# lengths, scripts and an empty string, so that padding patterns differ within a batch.
SAMPLE_SENTENCES: tuple[str, ...] = (
    "",
    "Open",
    "Save the file before closing?",
    "Die Datei konnte nicht gespeichert werden.",
    "Impossible d'ouvrir le fichier « %s » : permission refusée.",
    "No se encontró ningún paquete con ese nombre.",
    "Установить обновления сейчас?",
    "ファイルを開けませんでした。",
    "更新软件包列表时出错。",
    "لا يمكن الاتصال بالخادم.",
    "Kurulum tamamlandı; bilgisayarınızı yeniden başlatın.",
    "A very long sentence that keeps going, " * 40,
)


@dataclass(frozen=True)
class EquivalenceReport:
    """How far a converted model's embeddings are from its base model's, on the same sentences."""

    max_abs_diff: float
    min_cosine: float
    num_sentences: int

    def __str__(self) -> str:
        return (
            f"max |diff| {self.max_abs_diff:.3g}, min cosine {self.min_cosine:.9f} "
            f"on {self.num_sentences} sentences"
        )


def find_mean_pooling(model: SentenceTransformer) -> str:
    """Name of the model's mean ``Pooling`` module; ConversionError saying why when there is none."""
    for name, module in model.named_children():
        if is_generalized_pooling(module):
            raise ConversionError(f"The model already uses MultiHeadGeneralizedPooling (module {name}).")
        if isinstance(module, Pooling):
            if module.pooling_mode not in ("mean", ("mean",)):
                raise ConversionError(
                    f"Module {name} pools with {module.pooling_mode!r}, not 'mean': generalized pooling "
                    f"starts as an exact copy of mean pooling, so only mean-pooling models can be converted."
                )
            return name
    kinds = ", ".join(type(module).__name__ for module in model.children())
    raise ConversionError(f"The model has no Pooling module to replace (its modules: {kinds}).")


def convert(
    model: SentenceTransformer,
    num_heads: int = 8,
    hidden_dim: int | None = None,
    initialization: Initialization = "mean",
    seed: int | None = None,
) -> SentenceTransformer:
    """A new model whose mean Pooling is replaced by MultiHeadGeneralizedPooling; the input is untouched.

    Every other module (Transformer, Dense, Normalize, ...) is kept. With ``initialization="mean"`` the
    new model gives the same embeddings as the old one, and can still learn.
    """
    name = find_mean_pooling(model)
    pooling: Pooling = model._modules[name]
    generalized = MultiHeadGeneralizedPooling(
        pooling.embedding_dimension,
        num_heads=num_heads,
        hidden_dim=hidden_dim,
        initialization=initialization,
        include_prompt=pooling.include_prompt,
        seed=seed,
    )
    backbone = next(model.parameters(), None)
    if backbone is not None:
        generalized.to(device=backbone.device, dtype=backbone.dtype)

    converted = copy.deepcopy(model)
    converted._modules[name] = generalized
    # A model loaded from disk would otherwise reuse the README of the mean-pooling original.
    converted._model_card_text = None
    return converted


@torch.inference_mode()
def verify_equivalence(
    base: SentenceTransformer,
    converted: SentenceTransformer,
    sentences: list[str] | None = None,
    batch_size: int = 32,
) -> EquivalenceReport:
    """Compare the embeddings of two models on the built-in multilingual sample plus ``sentences``."""
    texts = list(SAMPLE_SENTENCES) + list(sentences or [])
    kwargs = {"batch_size": batch_size, "convert_to_tensor": True, "show_progress_bar": False}
    expected = base.encode(texts, **kwargs).float().cpu()
    actual = converted.encode(texts, **kwargs).float().cpu()
    if expected.shape != actual.shape:
        raise GeneralizedPoolingError(
            f"The models embed to different sizes ({expected.shape[1]} vs {actual.shape[1]}): "
            f"they cannot be the same model."
        )
    cosine = torch.nn.functional.cosine_similarity(expected, actual, dim=1)
    # The empty string can embed to the zero vector in both: equal, whatever cosine says.
    both_zero = (expected.abs().sum(1) == 0) & (actual.abs().sum(1) == 0)
    cosine = torch.where(both_zero, torch.ones_like(cosine), cosine)
    return EquivalenceReport(
        max_abs_diff=float((expected - actual).abs().max()),
        min_cosine=float(cosine.min()),
        num_sentences=len(texts),
    )


class GeneralizedSentenceTransformerMaker:
    """The seed notebook's API: ``GeneralizedSentenceTransformerMaker(model, num_heads=8).get_model()``."""

    def __init__(
        self,
        model: SentenceTransformer,
        num_heads: int = 8,
        hidden_dim: int | None = None,
        initialization: Initialization = "mean",
        device: str | None = None,
        seed: int | None = None,
    ) -> None:
        self.model = convert(model, num_heads, hidden_dim, initialization, seed)
        if device is not None:
            self.model.to(device)

    def get_model(self) -> SentenceTransformer:
        return self.model
