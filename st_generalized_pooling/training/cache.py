"""Token embeddings of a fixed list of texts, computed once with a frozen encoder.

Only the valid tokens are kept (no padding), in shards of ``SHARD_TEXTS`` texts: in memory, or as safetensors files
in a folder for sets too large for memory, read back a batch at a time. A folder that already holds the cache of
the same texts and encoder weights is reused instead of encoding again.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import save_file
from sentence_transformers import SentenceTransformer
from torch import Tensor
from torch.nn.utils.rnn import pad_sequence
from tqdm.auto import tqdm

from st_generalized_pooling.errors import GeneralizedPoolingError

SHARD_TEXTS = 8192
INDEX_NAME = "token_embeddings.json"


def encoder_fingerprint(model: SentenceTransformer, texts: list[str]) -> str:
    """A hash of the texts, the encoder's weights and its maximum sequence length: equal hashes, equal cache."""
    digest = hashlib.sha256()
    for text in texts:
        digest.update(text.encode("utf-8") + b"\0")
    digest.update(str(getattr(model[0], "max_seq_length", None)).encode())
    for name, tensor in model[0].state_dict().items():
        digest.update(name.encode() + str(tensor.dtype).encode())
        digest.update(tensor.detach().cpu().contiguous().view(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


class TokenEmbeddingCache:
    """The encoder's token embeddings of ``texts``; ``batch(indices)`` gives them padded, with their mask."""

    def __init__(self, shards: list[tuple[Tensor, Tensor]], dimension: int, handles: tuple = ()) -> None:
        # Each shard: (valid token embeddings of its texts, one after another, or a lazy safetensors slice of
        # them; each text's start offset, then the end). ``handles`` keeps the shard files open.
        self.shards = shards
        self.dimension = dimension
        self._handles = handles

    @classmethod
    @torch.inference_mode()
    def build(
        cls,
        model: SentenceTransformer,
        texts: list[str],
        batch_size: int = 64,
        cache_dir: str | os.PathLike | None = None,
        show_progress_bar: bool = True,
    ) -> TokenEmbeddingCache:
        """Encode ``texts`` with the model's first module (the encoder), in batches sorted by length."""
        folder = Path(cache_dir) if cache_dir is not None else None
        fingerprint = encoder_fingerprint(model, texts) if folder is not None else None
        if folder is not None and (cached := cls._open(folder, fingerprint)) is not None:
            return cached

        encoder = model[0]
        was_training = encoder.training
        encoder.eval()
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        rows: list[Tensor | None] = [None] * len(texts)
        dimension = 0
        try:
            for start in tqdm(range(0, len(texts), batch_size), desc="Caching token embeddings",
                              disable=not show_progress_bar, unit="batch"):
                chunk = order[start : start + batch_size]
                features = model.preprocess([texts[i] for i in chunk])
                features = {k: v.to(model.device) if isinstance(v, Tensor) else v for k, v in features.items()}
                output = encoder(features)
                if "token_embeddings" not in output or output["token_embeddings"].dim() != 3:
                    raise GeneralizedPoolingError(
                        f"The model's first module ({type(encoder).__name__}) gives no padded token embeddings, "
                        f"so they cannot be cached."
                    )
                embeddings, mask = output["token_embeddings"], output["attention_mask"].bool()
                dimension = embeddings.shape[-1]
                for row, index in enumerate(chunk):
                    rows[index] = embeddings[row][mask[row]].cpu()
        finally:
            encoder.train(was_training)

        shards = []
        for start in range(0, len(texts), SHARD_TEXTS):
            part = rows[start : start + SHARD_TEXTS]
            lengths = torch.tensor([len(row) for row in part])
            offsets = torch.cat([torch.zeros(1, dtype=torch.long), lengths.cumsum(0)])
            shards.append((torch.cat(part), offsets))
        cache = cls(shards, dimension)
        if folder is not None:
            return cache._save(folder, fingerprint)
        return cache

    def batch(self, indices: Tensor, device: torch.device | str = "cpu") -> dict[str, Tensor]:
        """Token embeddings (len(indices), longest, d), right-padded with zeros, and the attention mask."""
        rows = []
        for index in indices.tolist():
            embeddings, offsets = self.shards[index // SHARD_TEXTS]
            local = index % SHARD_TEXTS
            rows.append(embeddings[int(offsets[local]) : int(offsets[local + 1])])
        lengths = torch.tensor([len(row) for row in rows])
        token_embeddings = pad_sequence(rows, batch_first=True)
        attention_mask = (torch.arange(token_embeddings.shape[1]).unsqueeze(0) < lengths.unsqueeze(1)).long()
        return {"token_embeddings": token_embeddings.to(device), "attention_mask": attention_mask.to(device)}

    def _save(self, folder: Path, fingerprint: str) -> TokenEmbeddingCache:
        """Write the shards to ``folder`` and return the cache reading from there (the memory is freed)."""
        folder.mkdir(parents=True, exist_ok=True)
        (folder / INDEX_NAME).unlink(missing_ok=True)
        names = []
        for number, (embeddings, offsets) in enumerate(self.shards):
            names.append(f"token_embeddings-{number:05d}.safetensors")
            save_file({"embeddings": embeddings.contiguous(), "offsets": offsets}, folder / names[-1])
        index = {"fingerprint": fingerprint, "dimension": self.dimension, "shards": names}
        (folder / INDEX_NAME).write_text(json.dumps(index, indent=2), encoding="utf-8")
        return TokenEmbeddingCache._open(folder, fingerprint)

    @staticmethod
    def _open(folder: Path, fingerprint: str) -> TokenEmbeddingCache | None:
        """The cache in ``folder`` if it was made from the same texts and encoder, else None."""
        try:
            index = json.loads((folder / INDEX_NAME).read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError):
            return None
        if index.get("fingerprint") != fingerprint:
            return None
        handles = [safe_open(str(folder / name), framework="pt") for name in index["shards"]]
        shards = [(handle.get_slice("embeddings"), handle.get_tensor("offsets")) for handle in handles]
        return TokenEmbeddingCache(shards, index["dimension"], tuple(handles))
