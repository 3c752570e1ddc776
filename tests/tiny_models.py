"""Tiny sentence-transformers models built offline from configs, with a tokenizer made here, and test sentences."""

from __future__ import annotations

import os

import torch
from sentence_transformers import SentenceTransformer
from sentence_transformers.base.modules import Dense, Normalize, Transformer
from sentence_transformers.sentence_transformer.modules import Pooling
from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors
from transformers import BertConfig, BertModel, DistilBertConfig, DistilBertModel, PreTrainedTokenizerFast

WORDS = (
    "the a file open save close update package error cannot could not be found install system user "
    "password network server connect disk space is full print printer settings window new delete "
    "datei öffnen speichern fehler fichier ouvrir erreur paquete archivo установить файл ファイル 更新"
).split()
MAX_LENGTH = 24

SENTENCES = [
    "",
    "open",
    "the file could not be saved",
    "cannot connect to the server: the network is down",
    "datei öffnen fehler",
    "установить файл",
    "install the new package and update the system settings " * 6,  # truncated at MAX_LENGTH
    "zzz unknown words only",
]


def make_tokenizer(path: str) -> PreTrainedTokenizerFast:
    """A WordPiece tokenizer over WORDS plus their characters, saved to ``path``."""
    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    chars = sorted({c for w in WORDS for c in w} | set("abcdefghijklmnopqrstuvwxyz:"))
    vocab = {token: i for i, token in enumerate(specials + WORDS + chars + [f"##{c}" for c in chars])}
    tok = Tokenizer(models.WordPiece(vocab, unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(lowercase=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B [SEP]", special_tokens=[("[CLS]", 2), ("[SEP]", 3)]
    )
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok, unk_token="[UNK]", pad_token="[PAD]", cls_token="[CLS]", sep_token="[SEP]",
        mask_token="[MASK]", model_max_length=MAX_LENGTH,
    )
    fast.save_pretrained(path)
    return fast


def build_model(path, kind: str) -> SentenceTransformer:
    """A tiny random model saved at ``path``: 'distil' = DistilBERT + mean + Dense(tanh), like distiluse;
    'bert' = BERT + mean + Normalize, like all-MiniLM-L6-v2."""
    torch.manual_seed(0)
    hf_dir = os.path.join(path, "hf")
    tokenizer = make_tokenizer(hf_dir)
    if kind == "distil":
        config = DistilBertConfig(
            vocab_size=len(tokenizer), dim=32, n_layers=2, n_heads=2, hidden_dim=64,
            max_position_embeddings=64, dropout=0.0, attention_dropout=0.0, pad_token_id=0,
        )
        DistilBertModel(config).save_pretrained(hf_dir)
    else:
        config = BertConfig(
            vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
            intermediate_size=64, max_position_embeddings=64, hidden_dropout_prob=0.0,
            attention_probs_dropout_prob=0.0,
        )
        BertModel(config).save_pretrained(hf_dir)
    transformer = Transformer(hf_dir, max_seq_length=MAX_LENGTH)
    modules = [transformer, Pooling(32, pooling_mode="mean")]
    if kind == "distil":
        modules.append(Dense(32, 16, activation_function=torch.nn.Tanh()))
    else:
        modules.append(Normalize())
    model = SentenceTransformer(modules=modules, device="cpu")
    model.save(os.path.join(path, "st"))
    return SentenceTransformer(os.path.join(path, "st"), device="cpu")
