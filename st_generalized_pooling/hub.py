"""Publish a model with generalized pooling on the Hugging Face Hub: build the exact folder to upload (the
sentence-transformers folder, the pooling source at its root, a rendered card) and push it in one commit.

The endpoint and the token are huggingface_hub's own (``HF_ENDPOINT``; ``HF_TOKEN`` or the saved login, unless a
token is given), so this works against the Hub and any Hub-compatible server alike. Tokens are never printed.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from huggingface_hub import CommitOperationAdd, CommitOperationDelete, HfApi
from huggingface_hub.errors import HfHubHTTPError, HTTPError, LocalTokenNotFoundError
from sentence_transformers import SentenceTransformer

from st_generalized_pooling.card import make_card, read_card
from st_generalized_pooling.convert import convert
from st_generalized_pooling.errors import GeneralizedPoolingError
from st_generalized_pooling.loading import load_model, save_model, uses_generalized_pooling

# Files a repo may hold that are not part of the model and that a push leaves alone.
KEPT_REMOTE_FILES = frozenset({".gitattributes"})


class HubError(GeneralizedPoolingError):
    """The Hub refused or could not be reached: bad or missing token, no permission, unreachable endpoint."""


@dataclass(frozen=True)
class PreparedModel:
    """A model ready to publish, with what its card needs to say about where it came from."""

    model: SentenceTransformer
    base: SentenceTransformer
    base_source: str  # where ``base`` was loaded from (Hub id or folder); its README is the base's card
    base_model: str | None  # Hub id of the base model, for the card's metadata
    converted: bool  # converted from ``base`` just now (rather than published as given)
    seed: int | None


@dataclass(frozen=True)
class PushResult:
    commit_url: str
    commit_oid: str
    pr_url: str | None
    changed: bool  # False when the repo already held exactly these files
    files: list[str]


def hub_id(name_or_path: str) -> str | None:
    """``name_or_path`` when it names a Hub repo rather than a local folder (the card's base_model is an id)."""
    return None if Path(name_or_path).exists() else name_or_path


def prepare(
    name_or_path: str,
    num_heads: int = 8,
    hidden_dim: int | None = None,
    seed: int | None = 0,
    base_model: str | None = None,
    device: str | None = None,
) -> PreparedModel:
    """Load ``name_or_path``: a mean-pooling model is converted now; a model that already uses generalized pooling
    (converted or fine-tuned) is kept as it is, and its base model, to measure against, is ``base_model`` or the
    ``base_model`` recorded in its card."""
    if not uses_generalized_pooling(name_or_path):
        base = SentenceTransformer(name_or_path, device=device)
        model = convert(base, num_heads=num_heads, hidden_dim=hidden_dim, seed=seed)
        recorded = hub_id(base_model) if base_model else hub_id(name_or_path)
        return PreparedModel(model, base, name_or_path, recorded, converted=True, seed=seed)
    if base_model is None:
        card = read_card(name_or_path)
        base_model = card.data.get("base_model") if card is not None else None
        if isinstance(base_model, list):
            base_model = base_model[0] if len(base_model) == 1 else None
    if base_model is None:
        raise GeneralizedPoolingError(
            f"{name_or_path} already uses generalized pooling and its card names no single base_model: give "
            f"--base-model ID, the model it was converted from, to measure the card's figures against."
        )
    return PreparedModel(
        load_model(name_or_path, device=device),
        SentenceTransformer(base_model, device=device),
        base_model,
        hub_id(base_model),
        converted=False,
        seed=None,
    )


def build_upload_folder(prepared: PreparedModel, folder: str | os.PathLike, repo_id: str) -> list[str]:
    """Write exactly what ``push`` uploads to ``folder`` (which must not exist or be empty); returns its files.

    The folder is ``save_model(..., self_contained=True)``'s (weights in safetensors, the pooling source at the
    root as ``generalized_pooling.py``, the package version in config_sentence_transformers.json) with the card
    of this package as README.md instead of the one sentence-transformers would write.
    """

    def add_card(staging: Path) -> None:
        card = make_card(
            prepared.model,
            prepared.base,
            staging,
            repo_id,
            base_model=prepared.base_model,
            base_card=read_card(prepared.base_source),
            converted=prepared.converted,
            seed=prepared.seed,
        )
        card.save(staging / "README.md")

    # The card is written before the folder moves into place: a failure leaves no card-less folder behind.
    folder = save_model(prepared.model, folder, self_contained=True, create_model_card=False, finalize=add_card)
    return list_files(folder)


def list_files(folder: str | os.PathLike) -> list[str]:
    """Every file under ``folder``, as sorted repo paths."""
    folder = Path(folder)
    return sorted(path.relative_to(folder).as_posix() for path in folder.rglob("*") if path.is_file())


def hub_error(error: Exception, endpoint: str) -> HubError:
    """One line saying what went wrong with the Hub: huggingface_hub's messages span several lines."""
    if isinstance(error, LocalTokenNotFoundError):
        return HubError("No Hugging Face token: set HF_TOKEN, run `hf auth login`, or pass --token.")
    lines = [line for line in str(error).splitlines() if line.strip()]
    if isinstance(error, HfHubHTTPError) and error.response is not None:
        status, path = error.response.status_code, error.response.request.url.path
        detail = (error.server_message or "").strip().splitlines()[:1] or lines[:1]
        detail = detail[0] if detail else ""
        if status == 401:
            return HubError(f"The Hub at {endpoint} rejected the token (401): {detail}")
        if status == 403:
            return HubError(f"The token has no permission for {path} on {endpoint} (403): {detail}")
        return HubError(f"The Hub at {endpoint} answered {status} to {path}: {detail}")
    return HubError(f"Cannot reach the Hub at {endpoint}: {type(error).__name__}: {lines[0] if lines else ''}")


def push_folder(
    folder: str | os.PathLike,
    repo_id: str,
    token: str | None = None,
    private: bool = False,
    revision: str | None = None,
    create_pr: bool = False,
    commit_message: str | None = None,
) -> PushResult:
    """Upload ``folder`` to ``repo_id`` (created if needed) as one commit, so that a failure uploads nothing.

    After the commit the revision holds exactly the folder's files: files that an earlier push left and this
    folder does not have are deleted in the same commit (``.gitattributes`` is kept). ``revision`` is a branch,
    created from main if needed; ``create_pr`` opens a pull request instead of committing to the branch.
    ``private`` creates a new repo as private, and refuses to upload to an existing public one.
    """
    api = HfApi(token=token)
    try:
        api.create_repo(repo_id, private=private, exist_ok=True)
        if revision is not None:
            api.create_branch(repo_id, branch=revision, exist_ok=True)
        head = api.model_info(repo_id, revision=revision)
        if private and not head.private:
            raise HubError(
                f"{repo_id} already exists and is public: --private does not change that. Make it private on the "
                f"Hub first, or push without --private."
            )
        files = list_files(folder)
        stale = sorted({s.rfilename for s in head.siblings or []} - set(files) - KEPT_REMOTE_FILES)
        operations = [CommitOperationDelete(path_in_repo=path) for path in stale] + [
            CommitOperationAdd(path_in_repo=path, path_or_fileobj=str(Path(folder) / path)) for path in files
        ]
        # create_commit, not upload_folder: with Xet, upload_folder may split a folder over several commits.
        info = api.create_commit(
            repo_id,
            operations,
            commit_message=commit_message or "Upload model with generalized pooling",
            revision=revision,
            create_pr=create_pr,
            parent_commit=None if create_pr else head.sha,
        )
    except (HTTPError, LocalTokenNotFoundError) as error:
        raise hub_error(error, api.endpoint) from None
    return PushResult(info.commit_url, info.oid, info.pr_url, changed=info.oid != head.sha, files=files)


def check_token(token: str | None = None) -> str:
    """The user name the token (or huggingface_hub's own token) belongs to; HubError when there is none or the
    Hub refuses it. Called before the slow part of a push, so a bad token fails at once."""
    api = HfApi(token=token)
    try:
        return api.whoami()["name"]
    except (HTTPError, LocalTokenNotFoundError) as error:
        raise hub_error(error, api.endpoint) from None


def publish(
    prepared: PreparedModel,
    repo_id: str,
    token: str | None = None,
    private: bool = False,
    revision: str | None = None,
    create_pr: bool = False,
    commit_message: str | None = None,
) -> PushResult:
    """Build the upload folder of ``prepared`` in a temporary directory and push it (see ``push_folder``)."""
    with tempfile.TemporaryDirectory(prefix="st-gp-push-") as tmp:
        folder = Path(tmp) / "model"
        build_upload_folder(prepared, folder, repo_id)
        return push_folder(folder, repo_id, token, private, revision, create_pr, commit_message)
