"""Token embeddings of a fixed list of texts, computed once with a frozen encoder.

Only the valid tokens are kept (no padding), in shards of ``SHARD_TEXTS`` texts: in memory, or as safetensors files
in a folder for sets too large for memory, read back a batch at a time. A folder that already holds the cache of
the same encoder input (token ids) and encoder weights is reused instead of encoding again.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file
from sentence_transformers import SentenceTransformer
from sentence_transformers.util import batch_to_device
from torch import Tensor
from torch.nn.utils.rnn import pad_sequence
from tqdm.auto import tqdm

from st_generalized_pooling.errors import GeneralizedPoolingError

SHARD_TEXTS = 8192
INDEX_NAME = "token_embeddings.json"
RANKS_NAME = "token_embeddings-ranks.safetensors"


def encoder_fingerprint(model: SentenceTransformer, texts: list[str], batch_size: int = 1024) -> str:
    """A hash of the encoder's input (the token ids of ``texts``, so the tokenizer and maximum length count too)
    and of its weights: equal hashes, equal token embeddings."""
    digest = hashlib.sha256()
    for start in range(0, len(texts), batch_size):
        features = model.preprocess(texts[start : start + batch_size])
        for key in sorted(key for key, value in features.items() if isinstance(value, Tensor)):
            digest.update(key.encode() + _tensor_bytes(features[key]))
    for name, tensor in model[0].state_dict().items():
        digest.update(name.encode() + str(tensor.dtype).encode() + _tensor_bytes(tensor))
    return digest.hexdigest()


def _tensor_bytes(tensor: Tensor) -> bytes:
    return tensor.detach().cpu().contiguous().view(-1).view(torch.uint8).numpy().tobytes()


class TokenEmbeddingCache:
    """The encoder's token embeddings of ``texts``; ``batch(indices)`` gives them padded, with their mask.

    Texts are stored in order of length (the order they are encoded in), ``ranks[i]`` being text i's place.
    """

    def __init__(self, shards: list[tuple[Any, Tensor]], ranks: Tensor, dimension: int, handles: tuple = ()) -> None:
        # Each shard: (its texts' valid token embeddings one after another, as a tensor or a lazy safetensors
        # slice; each text's start offset, then the end). ``handles`` keeps the shard files open.
        self.shards = shards
        self.ranks = ranks
        self.dimension = dimension
        self._handles = handles

    @classmethod
    @torch.no_grad()
    def build(
        cls,
        model: SentenceTransformer,
        texts: list[str],
        batch_size: int = 64,
        cache_dir: str | os.PathLike | None = None,
        show_progress_bar: bool = True,
    ) -> TokenEmbeddingCache:
        """Encode ``texts`` with the model's first module (the encoder), in batches sorted by length. With
        ``cache_dir`` each shard is written as soon as it is full, so memory holds one shard at most."""
        folder = Path(cache_dir) if cache_dir is not None else None
        fingerprint = encoder_fingerprint(model, texts) if folder is not None else None
        if folder is not None and (cached := cls._open(folder, fingerprint)) is not None:
            return cached
        if folder is not None:
            folder.mkdir(parents=True, exist_ok=True)
            (folder / INDEX_NAME).unlink(missing_ok=True)  # an interrupted build leaves no valid index behind

        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        ranks = torch.empty(len(texts), dtype=torch.long)
        ranks[torch.tensor(order, dtype=torch.long)] = torch.arange(len(texts))
        shards: list[tuple[Any, Tensor]] = []
        names: list[str] = []
        pending: list[Tensor] = []

        def flush() -> None:
            lengths = torch.tensor([len(row) for row in pending])
            shard = (torch.cat(pending), torch.cat([torch.zeros(1, dtype=torch.long), lengths.cumsum(0)]))
            pending.clear()
            if folder is None:
                shards.append(shard)
            else:
                names.append(f"token_embeddings-{len(names):05d}.safetensors")
                save_file({"embeddings": shard[0].contiguous(), "offsets": shard[1]}, folder / names[-1])

        encoder = model[0]
        was_training = encoder.training
        encoder.eval()
        dimension = 0
        try:
            for start in tqdm(range(0, len(texts), batch_size), desc="Caching token embeddings",
                              disable=not show_progress_bar, unit="batch"):
                chunk = order[start : start + batch_size]
                features = batch_to_device(model.preprocess([texts[i] for i in chunk]), model.device)
                output = encoder(features)
                if "token_embeddings" not in output or output["token_embeddings"].dim() != 3:
                    raise GeneralizedPoolingError(
                        f"The model's first module ({type(encoder).__name__}) gives no padded token embeddings, "
                        f"so they cannot be cached."
                    )
                embeddings, mask = output["token_embeddings"], output["attention_mask"].bool()
                dimension = embeddings.shape[-1]
                for row in range(len(chunk)):
                    pending.append(embeddings[row][mask[row]].cpu())
                    if len(pending) == SHARD_TEXTS:
                        flush()
            if pending:
                flush()
        finally:
            encoder.train(was_training)

        if folder is None:
            return cls(shards, ranks, dimension)
        save_file({"ranks": ranks}, folder / RANKS_NAME)
        index = {"fingerprint": fingerprint, "dimension": dimension, "shards": names}
        (folder / INDEX_NAME).write_text(json.dumps(index, indent=2), encoding="utf-8")
        return cls._open(folder, fingerprint)

    def batch(self, indices: Tensor, device: torch.device | str = "cpu") -> dict[str, Tensor]:
        """Token embeddings (len(indices), longest, d), right-padded with zeros, and the attention mask."""
        rows = []
        for rank in self.ranks[indices].tolist():
            embeddings, offsets = self.shards[rank // SHARD_TEXTS]
            local = rank % SHARD_TEXTS
            rows.append(embeddings[int(offsets[local]) : int(offsets[local + 1])])
        lengths = torch.tensor([len(row) for row in rows])
        token_embeddings = pad_sequence(rows, batch_first=True)
        attention_mask = (torch.arange(token_embeddings.shape[1]).unsqueeze(0) < lengths.unsqueeze(1)).long()
        return {"token_embeddings": token_embeddings.to(device), "attention_mask": attention_mask.to(device)}

    @classmethod
    def _open(cls, folder: Path, fingerprint: str) -> TokenEmbeddingCache | None:
        """The cache in ``folder`` if it was made from the same encoder input and weights, else None."""
        try:
            index = json.loads((folder / INDEX_NAME).read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError):
            return None
        if index.get("fingerprint") != fingerprint:
            return None
        handles = [safe_open(str(folder / name), framework="pt") for name in index["shards"]]
        shards = [(handle.get_slice("embeddings"), handle.get_tensor("offsets")) for handle in handles]
        ranks = load_file(folder / RANKS_NAME)["ranks"]
        return cls(shards, ranks, index["dimension"], tuple(handles))
