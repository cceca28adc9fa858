"""Where the base model comes from: the offline tiny BERT built here, a local folder, or the hub.

The tiny model is saved in Hugging Face format and then loaded through the same
`from_pretrained` path as AraBERT, so the offline default exercises the real code.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

from arner.train.config import ConfigError, TinyModel, TrainConfig

SPECIAL_TOKENS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]


def train_wordpiece(texts: Sequence[str], vocab_size: int, min_frequency: int = 1, alphabet_min_count: int = 1):
    """A BERT-style WordPiece tokenizer trained on `texts` (no lowercasing, diacritics kept).

    Characters seen fewer than `alphabet_min_count` times are left out of the alphabet: on a large
    multi-script corpus each rare character would otherwise take two entries (`x`, `##x`) of the
    vocabulary, and a word holding one becomes [UNK].

    The same texts always give the same vocabulary: `tokenizers` numbers continuation pieces
    (`##x`) in hash-map order, which breaks ties between merges differently from run to run
    (huggingface/tokenizers#1794), so every `##x` is registered up front in sorted order.
    """
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers
    from transformers import BertTokenizerFast

    def blank() -> Tokenizer:
        tok = Tokenizer(models.WordPiece(unk_token="[UNK]"))
        tok.normalizer = normalizers.BertNormalizer(clean_text=True, handle_chinese_chars=True, strip_accents=False, lowercase=False)
        tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
        return tok

    probe = blank()
    counts: Counter[str] = Counter()
    for t in texts:
        counts.update(c for word, _ in probe.pre_tokenizer.pre_tokenize_str(probe.normalizer.normalize_str(t)) for c in word)
    alphabet = sorted(c for c, n in counts.items() if n >= alphabet_min_count)
    trainer = trainers.WordPieceTrainer(
        vocab_size=vocab_size,
        min_frequency=min_frequency,
        special_tokens=SPECIAL_TOKENS + ["##" + c for c in alphabet],
        initial_alphabet=alphabet,
        limit_alphabet=len(alphabet),
    )
    trained = blank()
    trained.train_from_iterator(texts, trainer=trainer)
    learned = sorted(set(trained.get_vocab()) - set(SPECIAL_TOKENS))
    tok = blank()  # the learned vocabulary, with only the real special tokens as added tokens
    tok.model = models.WordPiece({t: i for i, t in enumerate(SPECIAL_TOKENS + learned)}, unk_token="[UNK]")
    tok.add_special_tokens(SPECIAL_TOKENS)
    cls_id, sep_id = tok.token_to_id("[CLS]"), tok.token_to_id("[SEP]")
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B:1 [SEP]:1", special_tokens=[("[CLS]", cls_id), ("[SEP]", sep_id)]
    )
    tok.decoder = decoders.WordPiece()
    return BertTokenizerFast(tokenizer_object=tok, do_lower_case=False, strip_accents=False, tokenize_chinese_chars=True)


def bert_config(shape, vocab_size: int, pad_token_id: int):
    """A `BertConfig` from a shape (hidden size, layers, heads, intermediate size, positions, dropouts)."""
    from transformers import BertConfig

    return BertConfig(
        vocab_size=vocab_size,
        hidden_size=shape.hidden_size,
        num_hidden_layers=shape.num_hidden_layers,
        num_attention_heads=shape.num_attention_heads,
        intermediate_size=shape.intermediate_size,
        max_position_embeddings=shape.max_position_embeddings,
        hidden_dropout_prob=shape.hidden_dropout_prob,
        attention_probs_dropout_prob=shape.attention_probs_dropout_prob,
        pad_token_id=pad_token_id,
    )


def build_tiny(texts: Sequence[str], shape: TinyModel, out: Path, seed: int) -> Path:
    """Train a tokenizer on `texts` and save it with a randomly initialized small BERT."""
    import torch
    from transformers import BertModel

    tokenizer = train_wordpiece(texts, shape.vocab_size, shape.min_frequency)
    config = bert_config(shape, len(tokenizer), tokenizer.pad_token_id)
    torch.manual_seed(seed)
    model = BertModel(config)
    out.mkdir(parents=True, exist_ok=True)
    tokenizer.save_pretrained(str(out))
    model.save_pretrained(str(out))
    return out


def offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes") or os.environ.get("TRANSFORMERS_OFFLINE", "") == "1"


def resolve(config: TrainConfig, where: str, train_texts: Sequence[str], work: Path) -> str:
    """A loadable model path or hub id; a hub id that cannot be had fails at once, clearly."""
    if config.model == "tiny":
        return str(build_tiny(train_texts, config.tiny, work / "base-model", config.seed))
    if Path(config.model).is_dir():
        return config.model
    if config.model.startswith((".", "/", "~")):
        raise ConfigError(f"{where}: model folder {config.model!r} does not exist")
    from transformers import AutoConfig

    try:
        AutoConfig.from_pretrained(config.model, local_files_only=True)
        return config.model
    except (OSError, ValueError):
        pass
    reachable = not offline() and hub_reachable()
    if reachable:
        try:
            AutoConfig.from_pretrained(config.model)
            return config.model
        except (OSError, ValueError) as e:
            raise ConfigError(f"{where}: model {config.model!r} could not be loaded from the hub: {e}") from None
    mode = "HF_HUB_OFFLINE is set" if offline() else "the model hub cannot be reached"
    raise ConfigError(
        f"{where}: model {config.model!r} is not in the local Hugging Face cache and {mode}. "
        f"Download it where the hub is reachable (e.g. `hf download {config.model} --local-dir DIR`), "
        f"then point the config at it: `model: DIR` (or `--set model=DIR`)."
    )


# model types whose position ids start after the padding id (RoBERTa's scheme): they use pad_token_id + 1 fewer positions
OFFSET_POSITIONS = {"roberta", "xlm-roberta", "xlm-roberta-xl", "camembert", "longformer", "data2vec-text", "ibert", "mpnet"}


def check_positions(base: str, max_length: int, where: str) -> None:
    """Refuse a `max_length` beyond the positions of the base model at `base` now, not as a shape error mid-run."""
    from transformers import AutoConfig

    model_config = AutoConfig.from_pretrained(base)
    positions = getattr(model_config, "max_position_embeddings", None)
    if not isinstance(positions, int):  # relative or rotary positions: no fixed limit to check
        return
    offset = (getattr(model_config, "pad_token_id", None) or 0) + 1 if model_config.model_type in OFFSET_POSITIONS else 0
    usable = positions - offset
    if max_length <= usable:
        return
    source = Path(base) / "config.json" if Path(base).is_dir() else f"the config.json of {base}"
    note = f", of which {model_config.model_type} uses {usable}" if offset else ""
    raise ConfigError(
        f"{where}: max_length {max_length} is more than the base model takes: max_position_embeddings {positions} "
        f"in {source}{note}; set max_length <= {usable}"
    )


def hub_reachable(timeout: float = 3.0) -> bool:
    """One quick TCP connection to the hub endpoint, instead of the client's minute of retries."""
    import socket
    from urllib.parse import urlparse

    from huggingface_hub import constants

    url = urlparse(constants.ENDPOINT)
    try:
        socket.create_connection((url.hostname, url.port or 443), timeout=timeout).close()
        return True
    except OSError:
        return False
