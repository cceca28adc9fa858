"""`arner pretrain`: pretraining an encoder on raw text, by masked LM or by ELECTRA's replaced-token detection.

`text` reads the inputs, `data` learns the tokenizer and packs the rows (with `datasets`),
`masking` holds the collators, `model` the MLM wrapper, `electra` the generator + discriminator,
`run` the command itself; `ship` and `card` write the shipped encoder (`models/`) and its model card.
"""

from arner.train.config import PretrainConfig, TextInput
from arner.train.pretrain.data import GroupTexts, build_rows, load_rows, prepare_data, row_lengths, split_heldout
from arner.train.pretrain.masking import make_collator
from arner.train.pretrain.model import MaskedPositionsMLM, heldout_loss
from arner.train.pretrain.run import pretrain
from arner.train.pretrain.text import all_texts, iter_texts, read_units

__all__ = [
    "GroupTexts",
    "MaskedPositionsMLM",
    "PretrainConfig",
    "TextInput",
    "all_texts",
    "build_rows",
    "heldout_loss",
    "iter_texts",
    "load_rows",
    "make_collator",
    "prepare_data",
    "pretrain",
    "read_units",
    "row_lengths",
    "split_heldout",
]
