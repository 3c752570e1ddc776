"""Save and load converted models: ``save_model`` writes whole folders or nothing, ``load_model`` runs no
code from the model folder or repo."""

from __future__ import annotations

import importlib.metadata
import inspect
import json
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from sentence_transformers import SentenceTransformer
from sentence_transformers.util import load_file_path

from st_generalized_pooling.errors import GeneralizedPoolingError, UnsafeModelError
from st_generalized_pooling.pooling import SOURCE_FILE_NAME, MultiHeadGeneralizedPooling

PACKAGE = "st-generalized-pooling"
CLASS_NAME = MultiHeadGeneralizedPooling.__name__
# modules.json types that mean this package's pooling: the installed class, and the copy of pooling.py
# that is published next to a model (and that sentence-transformers names by its file on re-save).
POOLING_TYPES: tuple[str, ...] = (
    f"{MultiHeadGeneralizedPooling.__module__}.{CLASS_NAME}",
    f"{SOURCE_FILE_NAME.removesuffix('.py')}.{CLASS_NAME}",
)


def is_generalized_pooling(module: torch.nn.Module) -> bool:
    """True for this package's pooling class and for the copy of its source that a model loaded with
    ``trust_remote_code=True`` runs (a different class object, from the model folder's generalized_pooling.py)."""
    cls = type(module)
    return isinstance(module, MultiHeadGeneralizedPooling) or (
        cls.__name__ == MultiHeadGeneralizedPooling.__name__
        and cls.__module__.rsplit(".", 1)[-1] == SOURCE_FILE_NAME.removesuffix(".py")
    )


def find_generalized_pooling(model: torch.nn.Module) -> MultiHeadGeneralizedPooling:
    """The model's MultiHeadGeneralizedPooling module (either class); GeneralizedPoolingError when it has none."""
    for module in model.modules():
        if is_generalized_pooling(module):
            return module
    raise GeneralizedPoolingError(
        "The model has no MultiHeadGeneralizedPooling module: convert it first (st_generalized_pooling.convert)."
    )


def read_module_types(
    name_or_path: str,
    token: bool | str | None = None,
    cache_folder: str | None = None,
    revision: str | None = None,
    local_files_only: bool = False,
) -> list[str]:
    """The ``type`` of every module in a saved or published model's ``modules.json``."""
    path = load_file_path(
        name_or_path,
        "modules.json",
        token=token,
        cache_folder=cache_folder,
        revision=revision,
        local_files_only=local_files_only,
    )
    if path is None:
        raise UnsafeModelError(f"{name_or_path} has no modules.json: it is not a sentence-transformers model.")
    with open(path, encoding="utf-8") as file:
        try:
            return [entry["type"] for entry in json.load(file)]
        except (json.JSONDecodeError, KeyError, TypeError) as error:
            raise UnsafeModelError(f"Unreadable modules.json in {name_or_path}: {error}") from None


def uses_generalized_pooling(name_or_path: str) -> bool:
    """Whether a saved or published model already has this package's pooling (read from its modules.json)."""
    try:
        return any(ref in POOLING_TYPES for ref in read_module_types(name_or_path))
    except UnsafeModelError:  # no modules.json: a plain transformers model, to which ST adds mean pooling
        return False


def load_model(name_or_path: str, **kwargs: Any) -> SentenceTransformer:
    """Load a model that may use generalized pooling, executing no code shipped with the model.

    Only ``sentence_transformers.*`` modules and this package's pooling class are accepted; the pooling is
    always this installed package's class, never the repo's copy. Anything else raises UnsafeModelError.
    ``trust_remote_code`` is forced off, so the Transformer backbone cannot run repo code either. Other
    keyword arguments go to ``SentenceTransformer``.
    """
    if kwargs.pop("trust_remote_code", False):
        raise UnsafeModelError("load_model never runs repo code; use SentenceTransformer(..., trust_remote_code=True).")
    hub_kwargs = {key: kwargs[key] for key in ("token", "cache_folder", "revision", "local_files_only") if key in kwargs}
    foreign = [
        ref
        for ref in read_module_types(name_or_path, **hub_kwargs)
        if not ref.startswith("sentence_transformers.") and ref not in POOLING_TYPES
    ]
    if foreign:
        raise UnsafeModelError(
            f"{name_or_path} uses module types {foreign} that are neither sentence-transformers' nor "
            f"{CLASS_NAME}: loading them would run code from the model. Inspect it and use "
            f"SentenceTransformer(..., trust_remote_code=True) if you trust it."
        )
    # The private hook maps a modules.json type to an already imported class, without importing anything.
    module_classes = dict.fromkeys(POOLING_TYPES, MultiHeadGeneralizedPooling)
    return SentenceTransformer._load_with_module_classes(
        name_or_path, module_classes, trust_remote_code=False, **kwargs
    )


def package_version() -> str:
    """This package's version, from its installed metadata (the one source of truth)."""
    return importlib.metadata.version(PACKAGE)


def make_self_contained(folder: str | os.PathLike) -> None:
    """Make a saved model folder loadable without this package: ``SentenceTransformer(folder_or_repo,
    trust_remote_code=True)`` then finds the pooling class in ``generalized_pooling.py`` at the root.

    Copies this package's own ``pooling.py`` there (one source of truth) and points ``modules.json`` at it.
    """
    folder = Path(folder)
    modules_path = folder / "modules.json"
    modules = json.loads(modules_path.read_text(encoding="utf-8"))
    for entry in modules:
        if entry["type"] in POOLING_TYPES:
            entry["type"] = POOLING_TYPES[1]
    modules_path.write_text(json.dumps(modules, indent=2), encoding="utf-8")
    shutil.copyfile(inspect.getsourcefile(MultiHeadGeneralizedPooling), folder / SOURCE_FILE_NAME)


def save_model(
    model: SentenceTransformer,
    path: str | os.PathLike,
    overwrite: bool = False,
    self_contained: bool = False,
    finalize: Callable[[Path], None] | None = None,
    **kwargs: Any,
) -> Path:
    """Save ``model`` to ``path`` as a complete folder, or leave ``path`` as it was.

    The folder is written next to ``path`` and moved into place at the end, so a failure never leaves a
    half-written model. ``config_sentence_transformers.json`` records this package's version. With
    ``self_contained`` the folder also carries the pooling source (see ``make_self_contained``); ``finalize``
    is called on the complete folder before it is moved into place (to add a model card, say). An existing
    non-empty ``path`` is an error unless ``overwrite``. Keyword arguments go to ``model.save``.
    """
    target = Path(path)
    if target.exists() and (not target.is_dir() or any(target.iterdir())) and not overwrite:
        raise FileExistsError(f"{target} already exists and is not empty; choose another path or overwrite it.")
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        model.save(str(staging), **kwargs)
        config_path = staging / "config_sentence_transformers.json"
        config = json.loads(config_path.read_text(encoding="utf-8"))
        config.setdefault("__version__", {})[PACKAGE] = package_version()
        config_path.write_text(json.dumps(config, indent=2, sort_keys=True), encoding="utf-8")
        if self_contained:
            make_self_contained(staging)
        if finalize is not None:
            finalize(staging)
        if target.exists():
            shutil.rmtree(target) if target.is_dir() else target.unlink()
        staging.rename(target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return target
