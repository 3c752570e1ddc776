"""The settings of an evaluation run, importable without torch (the command line builds its help from them)."""

from __future__ import annotations

from dataclasses import dataclass, field

from st_generalized_pooling.detection.corruptions import KINDS

DEFAULT_CATALOGS = "/usr/share/locale"


@dataclass
class EvaluationConfig:
    """What to read, how to sample and split, what to train. Defaults are those of the README run."""

    catalogs: list[str] = field(default_factory=lambda: [DEFAULT_CATALOGS])
    languages: list[str] | None = None
    exclude_domains: list[str] = field(default_factory=list)  # globs, e.g. "iso_*"
    max_pairs: int = 20000  # positives sampled, all splits together
    max_pairs_per_catalog: int = 300  # per (domain, language): catalogs stay dense enough for "similar"
    split_fractions: tuple[float, float, float] = (0.5, 0.25, 0.25)
    kinds: list[str] = field(default_factory=lambda: list(KINDS))
    negatives_per_kind: float = 0.1  # negatives of each kind, as a fraction of a split's positives
    seed: int = 0
    batch_size: int = 64
    num_heads: int = 8
    train: bool = True
    epochs: int = 2
    train_batch_size: int = 64
    learning_rate: float = 1e-3
    bootstrap_samples: int = 1000
    speed_pairs: int = 200
    fuzzy: list[str] | None = None
    max_fuzzy_pairs: int = 4000
