"""Multi-head generalized pooling (Chen, Ling & Zhu, COLING 2018) as a sentence-transformers module.

This file is self-contained (torch, safetensors and sentence-transformers only): it is published
unchanged next to converted models, so that ``SentenceTransformer(repo, trust_remote_code=True)``
works without this package installed.

For head h, with x_t^h = P_h x_t the head's slice of the projected token t:
    A^h = softmax over the valid tokens of (W2_h ReLU(W1_h x_t^h + b1_h) + b2_h)   (per dimension)
    v^h = sum_t A^h_t * x_t^h;   sentence_embedding = concat(v^1, ..., v^H)

The projection and the attention MLP only run on real tokens: padding is packed out first.
"""

from __future__ import annotations

import math
import os
import shutil
import sys
from typing import Any, Literal

try:
    from typing import Self
except ImportError:  # Python < 3.11
    from typing_extensions import Self

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file
from torch import Tensor, nn

from sentence_transformers.base.modules.module import Module

Initialization = Literal["mean", "random"]
WEIGHTS_NAME = "model.safetensors"
# The name this file is published under, next to a model's modules.json.
SOURCE_FILE_NAME = "generalized_pooling.py"


class MultiHeadGeneralizedPooling(Module):
    """Learnable multi-head vector attention pooling over token embeddings.

    Args:
        embedding_dimension: size d of the token embeddings (and of the sentence embedding).
        num_heads: number of heads H; d must be divisible by H.
        hidden_dim: width of each head's attention MLP; defaults to 4 * d / H.
        initialization: ``"mean"`` starts as exact masked mean pooling yet can learn (identity
            projection, random W1, zero W2); ``"random"`` initialises every weight like ``nn.Linear``.
        include_prompt: if False, prompt tokens are left out of the pooling, as in ``Pooling``.
        seed: seed of the random initialisation, for reproducible conversions.
        training_details: a JSON-able record of how the module was trained (set by the training code, shown on the
            model card); kept in the module's config so that it survives every save, checkpoint and upload.
    """

    config_keys: list[str] = [
        "embedding_dimension",
        "num_heads",
        "hidden_dim",
        "initialization",
        "include_prompt",
        "training_details",
    ]

    def __init__(
        self,
        embedding_dimension: int,
        num_heads: int = 8,
        hidden_dim: int | None = None,
        initialization: Initialization = "mean",
        include_prompt: bool = True,
        seed: int | None = None,
        training_details: dict[str, Any] | None = None,
    ) -> None:
        super().__init__()
        if embedding_dimension <= 0 or num_heads <= 0:
            raise ValueError(
                f"embedding_dimension ({embedding_dimension}) and num_heads ({num_heads}) must be positive."
            )
        if embedding_dimension % num_heads:
            raise ValueError(
                f"embedding_dimension {embedding_dimension} is not divisible by num_heads {num_heads}: "
                f"each head needs an equal share of the dimensions."
            )
        if initialization not in ("mean", "random"):
            raise ValueError(f"initialization must be 'mean' or 'random', not {initialization!r}.")
        head_dim = embedding_dimension // num_heads
        hidden_dim = 4 * head_dim if hidden_dim is None else hidden_dim
        if hidden_dim <= 0:
            raise ValueError(f"hidden_dim must be positive, not {hidden_dim}.")

        self.embedding_dimension = embedding_dimension
        self.num_heads = num_heads
        self.head_dim = head_dim
        self.hidden_dim = hidden_dim
        self.initialization = initialization
        self.include_prompt = include_prompt
        self.training_details = training_details

        # All heads stacked: the projection is one (d, d) matrix whose rows h*d/H..(h+1)*d/H are P_h.
        self.projection = nn.Linear(embedding_dimension, embedding_dimension)
        self.w1 = nn.Parameter(torch.empty(num_heads, head_dim, hidden_dim))
        self.b1 = nn.Parameter(torch.empty(num_heads, hidden_dim))
        self.w2 = nn.Parameter(torch.empty(num_heads, hidden_dim, head_dim))
        self.b2 = nn.Parameter(torch.empty(num_heads, head_dim))
        self.reset_parameters(seed)

    def reset_parameters(self, seed: int | None = None) -> None:
        """(Re-)initialise the weights as ``self.initialization`` says; every head gets its own W1."""
        generator = torch.Generator().manual_seed(seed) if seed is not None else None

        def uniform_(tensor: Tensor, fan_in: int) -> None:
            bound = 1.0 / math.sqrt(fan_in)
            values = torch.rand(tensor.shape, generator=generator, dtype=torch.float32) * 2 * bound - bound
            tensor.copy_(values)

        with torch.no_grad():
            uniform_(self.w1, self.head_dim)
            if self.initialization == "mean":
                self.projection.weight.copy_(torch.eye(self.embedding_dimension))
                for tensor in (self.projection.bias, self.b1, self.w2, self.b2):
                    tensor.zero_()
            else:
                uniform_(self.projection.weight, self.embedding_dimension)
                uniform_(self.projection.bias, self.embedding_dimension)
                uniform_(self.b1, self.head_dim)
                uniform_(self.w2, self.hidden_dim)
                uniform_(self.b2, self.hidden_dim)

    def forward(self, features: dict[str, Tensor | Any], **kwargs) -> dict[str, Tensor | Any]:
        token_embeddings = features["token_embeddings"]
        tokens, segments, batch_size = self._pack(token_embeddings, features)
        embedding, _ = self._pool(tokens, segments, batch_size)
        features["sentence_embedding"] = embedding.to(token_embeddings.dtype)
        return features

    def attention_weights(self, features: dict[str, Tensor | Any]) -> tuple[Tensor, Tensor]:
        """Per-head attention of each sentence, padded: ``(A, mask)`` with A of shape (batch, tokens, H, d/H).

        A is zero at padding; ``mask`` (batch, tokens) says which positions are valid. Used by the
        head-diversity penalties and for inspecting what each head attends to.
        """
        token_embeddings = features["token_embeddings"]
        if token_embeddings.dim() != 3 or "cu_seq_lens_q" in features:
            raise ValueError("attention_weights needs padded token embeddings of shape (batch, tokens, dim).")
        tokens, segments, batch_size = self._pack(token_embeddings, features)
        _, attention = self._pool(tokens, segments, batch_size)
        mask = self._valid_mask(token_embeddings, features)
        padded = attention.new_zeros(mask.numel(), self.num_heads, self.head_dim)
        padded[mask.reshape(-1)] = attention
        return padded.view(*mask.shape, self.num_heads, self.head_dim), mask

    def _valid_mask(self, token_embeddings: Tensor, features: dict[str, Tensor | Any]) -> Tensor:
        """Boolean (batch, tokens) mask of the positions to pool: attention mask minus an excluded prompt."""
        batch_size, seq_len = token_embeddings.shape[:2]
        attention_mask = features.get("attention_mask")
        if attention_mask is None:
            mask = torch.ones(batch_size, seq_len, dtype=torch.bool, device=token_embeddings.device)
        elif attention_mask.shape != (batch_size, seq_len):
            raise ValueError(
                f"attention_mask has shape {tuple(attention_mask.shape)} but token_embeddings has "
                f"{batch_size} sequences of {seq_len} tokens."
            )
        else:
            mask = attention_mask.bool()
        prompt_length = self._prompt_length(features)
        if prompt_length:
            # Skip left padding, then the prompt, as sentence-transformers' Pooling does.
            first_valid = mask.to(torch.int32).argmax(dim=1, keepdim=True)
            positions = torch.arange(seq_len, device=mask.device).unsqueeze(0)
            mask = mask & (positions >= first_valid + prompt_length)
        return mask

    def _prompt_length(self, features: dict[str, Tensor | Any]) -> int:
        if self.include_prompt or "prompt_length" not in features:
            return 0
        prompt_length = features["prompt_length"]
        return int(prompt_length.reshape(-1)[0].item()) if isinstance(prompt_length, Tensor) else int(prompt_length)

    def _pack(self, token_embeddings: Tensor, features: dict[str, Tensor | Any]) -> tuple[Tensor, Tensor, int]:
        """The valid tokens as one (N, d) tensor, with the index of the sentence each belongs to."""
        if token_embeddings.dim() != 3 or token_embeddings.shape[-1] != self.embedding_dimension:
            raise ValueError(
                f"MultiHeadGeneralizedPooling expects token embeddings of shape (batch, tokens, "
                f"{self.embedding_dimension}), got {tuple(token_embeddings.shape)}."
            )
        device = token_embeddings.device
        if "cu_seq_lens_q" in features:  # FlashAttention-2 layout: (1, sum of lengths, d), no padding
            if token_embeddings.shape[0] != 1:
                raise ValueError("Flattened token embeddings (with cu_seq_lens_q) must have batch size 1.")
            if self._prompt_length(features):
                raise ValueError("include_prompt=False is not supported on flattened (FlashAttention) inputs.")
            lengths = features["cu_seq_lens_q"].diff().to(device)
            segments = torch.repeat_interleave(torch.arange(lengths.numel(), device=device), lengths)
            return token_embeddings[0], segments, lengths.numel()

        batch_size, seq_len, dim = token_embeddings.shape
        mask = self._valid_mask(token_embeddings, features)
        flat = token_embeddings.reshape(batch_size * seq_len, dim)
        if bool(mask.all()):
            segments = torch.arange(batch_size, device=device).repeat_interleave(seq_len)
            return flat, segments, batch_size
        positions = mask.reshape(-1).nonzero().squeeze(1)
        return flat.index_select(0, positions), positions // seq_len, batch_size

    def _pool(self, tokens: Tensor, segments: Tensor, batch_size: int) -> tuple[Tensor, Tensor]:
        """Pool packed tokens: returns the sentence embeddings (batch, d) in float32 and the packed
        attention (N, H, d/H). The softmax and weighted sum run in float32 whatever the input dtype."""
        weight_dtype = self.projection.weight.dtype
        projected = self.projection(tokens.to(weight_dtype))  # (N, d)
        heads = projected.view(-1, self.num_heads, self.head_dim).transpose(0, 1)  # (H, N, d/H)
        hidden = torch.relu(torch.baddbmm(self.b1.unsqueeze(1), heads, self.w1))  # (H, N, hidden)
        logits = torch.baddbmm(self.b2.unsqueeze(1), hidden, self.w2)  # (H, N, d/H)
        logits = logits.transpose(0, 1).reshape(-1, self.embedding_dimension).float()  # (N, d)

        # Softmax over each sentence's tokens, per dimension, without re-padding.
        index = segments.unsqueeze(1).expand_as(logits)
        maximum = logits.new_zeros(batch_size, self.embedding_dimension)
        maximum = maximum.scatter_reduce(0, index, logits.detach(), reduce="amax", include_self=False)
        scores = torch.exp(logits - maximum.index_select(0, segments))
        total = logits.new_zeros(batch_size, self.embedding_dimension).index_add(0, segments, scores)
        weighted = logits.new_zeros(batch_size, self.embedding_dimension)
        weighted = weighted.index_add(0, segments, scores * projected.float())
        # A sentence without valid tokens has total 0 and weighted 0: its embedding is 0, not NaN.
        embedding = weighted / total.clamp_min(torch.finfo(torch.float32).tiny)
        attention = scores / total.clamp_min(torch.finfo(torch.float32).tiny).index_select(0, segments)
        return embedding, attention.view(-1, self.num_heads, self.head_dim)

    def get_embedding_dimension(self) -> int:
        return self.embedding_dimension

    def save(self, output_path: str, *args, safe_serialization: bool = True, **kwargs) -> None:
        """Write the config and ``model.safetensors`` (always safetensors, whatever ``safe_serialization``
        says). A class loaded from a model folder's copy of this file also puts that copy at the root of the
        saved model, where sentence-transformers looks for it on load (its own save puts it in the subfolder)."""
        self.save_config(output_path)
        self.save_torch_weights(output_path, safe_serialization=True)
        source = getattr(sys.modules.get(type(self).__module__), "__file__", None)
        if type(self).__module__.startswith("transformers_modules.") and source:
            root = os.path.dirname(os.path.abspath(output_path))
            shutil.copyfile(source, os.path.join(root, os.path.basename(source)))

    @classmethod
    def load(
        cls,
        model_name_or_path: str,
        subfolder: str = "",
        token: bool | str | None = None,
        cache_folder: str | None = None,
        revision: str | None = None,
        local_files_only: bool = False,
        **kwargs,
    ) -> Self:
        """Build the module from its config and restore its weights from ``model.safetensors``.

        Raises ValueError naming the file when the weights are missing, unreadable, or do not fit the config.
        """
        hub_kwargs = {
            "subfolder": subfolder,
            "token": token,
            "cache_folder": cache_folder,
            "revision": revision,
            "local_files_only": local_files_only,
        }
        config = cls.load_config(model_name_or_path=model_name_or_path, **hub_kwargs)
        module = cls(**config)
        where = os.path.join(model_name_or_path, subfolder, WEIGHTS_NAME)
        path = cls.load_file_path(model_name_or_path, filename=WEIGHTS_NAME, **hub_kwargs)
        if path is None:
            raise ValueError(f"Missing weights file {where}: a trained pooling module cannot be rebuilt without it.")
        try:
            weights = load_file(path)
        except (SafetensorError, OSError, ValueError) as error:
            raise ValueError(f"Corrupt weights file {where}: {error}") from None
        expected = module.state_dict()
        if set(weights) != set(expected):
            raise ValueError(
                f"Weights file {where} holds tensors {sorted(weights)}, expected {sorted(expected)}."
            )
        for name, tensor in weights.items():
            if tensor.shape != expected[name].shape:
                raise ValueError(
                    f"Weights file {where}: {name} has shape {tuple(tensor.shape)}, but the config "
                    f"(embedding_dimension={module.embedding_dimension}, num_heads={module.num_heads}, "
                    f"hidden_dim={module.hidden_dim}) needs {tuple(expected[name].shape)}."
                )
        module.load_state_dict(weights)
        return module

    def __repr__(self) -> str:
        config = {key: value for key, value in self.get_config_dict().items() if key != "training_details"}
        return f"MultiHeadGeneralizedPooling({config})"
