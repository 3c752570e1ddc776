"""Multi-head generalized pooling for sentence-transformers, starting as an exact copy of mean pooling."""

from st_generalized_pooling.convert import (
    EquivalenceReport,
    GeneralizedSentenceTransformerMaker,
    convert,
    verify_equivalence,
)
from st_generalized_pooling.errors import ConversionError, GeneralizedPoolingError, UnsafeModelError
from st_generalized_pooling.loading import load_model, save_model
from st_generalized_pooling.pooling import MultiHeadGeneralizedPooling

__all__ = [
    "ConversionError",
    "EquivalenceReport",
    "GeneralizedPoolingError",
    "GeneralizedSentenceTransformerMaker",
    "MultiHeadGeneralizedPooling",
    "UnsafeModelError",
    "convert",
    "load_model",
    "save_model",
    "verify_equivalence",
]
