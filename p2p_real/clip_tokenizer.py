"""CLIP's real BPE tokenizer, built offline from the merges file shipped with the package."""
from __future__ import annotations

import gzip
from functools import lru_cache
from pathlib import Path

from transformers import CLIPTokenizer


def clip_tokenizer(pad_token: str = "<|endoftext|>") -> CLIPTokenizer:
    """CLIP's real BPE tokenizer (49,408 tokens), from the vocabulary file shipped with the package.
    SDXL's second tokenizer is the same one padding with "!" (`pad_token="!"`)."""
    vocab, merges = clip_vocabulary()
    return CLIPTokenizer(vocab=dict(vocab), merges=[tuple(line.split()) for line in merges], model_max_length=77,
                         pad_token=pad_token)


@lru_cache(maxsize=1)
def clip_vocabulary() -> tuple[tuple[tuple[str, int], ...], tuple[str, ...]]:
    # The file lists CLIP's BPE merges (MIT licence, openai/CLIP); the vocabulary follows from them
    # exactly as CLIP builds it: 256 byte symbols, the same with "</w>", each merge, two specials.
    raw = (Path(__file__).parent / "assets" / "bpe_simple_vocab_16e6.txt.gz").read_bytes()
    lines = gzip.decompress(raw).decode("utf-8").split("\n")[1 : 49152 - 256 - 2 + 1]
    symbols = list(bytes_to_unicode().values())
    tokens = symbols + [symbol + "</w>" for symbol in symbols] + ["".join(line.split()) for line in lines]
    tokens += ["<|startoftext|>", "<|endoftext|>"]
    return tuple((token, index) for index, token in enumerate(tokens)), tuple(lines)


def bytes_to_unicode() -> dict[int, str]:
    """GPT-2/CLIP's reversible map from bytes to printable unicode characters."""
    printable = (list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1))
                 + list(range(ord("®"), ord("ÿ") + 1)))
    characters = printable[:]
    extra = 0
    for byte in range(256):
        if byte not in printable:
            printable.append(byte)
            characters.append(256 + extra)
            extra += 1
    return dict(zip(printable, map(chr, characters)))
