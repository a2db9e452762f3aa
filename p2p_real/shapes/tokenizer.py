"""A CLIP tokenizer fitted to the scene captions' vocabulary.

CLIP's 49,408-token table would be most of the shapes model's text encoder (49,408 x 64 weights)
for the 30-odd words its captions use. The fitted tokenizer keeps the 512 byte symbols, only
those of CLIP's BPE merges that the caption words go through (in CLIP's order), and the two
specials. So a caption word splits exactly as CLIP splits it, an unseen word still tokenises
(into smaller pieces the model never learnt), and the result is a plain `CLIPTokenizer` that
`load_model` reads from a diffusers folder like SD's.
"""
from __future__ import annotations

from ..clip_tokenizer import bytes_to_unicode, clip_vocabulary
from .scenes import BACKGROUNDS, COLOURS, SHAPES, SIZES

CAPTION_WORDS = ("a", "and", "on", "background", *SIZES, *COLOURS, *SHAPES, *BACKGROUNDS)


def merges_used(word: str, ranks: dict[tuple[str, str], int]) -> list[tuple[str, str]]:
    """The merges CLIP's BPE applies to `word`, in the order it applies them."""
    symbols = [*word[:-1], word[-1] + "</w>"]
    applied = []
    while len(symbols) > 1:
        pairs = {(left, right) for left, right in zip(symbols, symbols[1:]) if (left, right) in ranks}
        if not pairs:
            break
        best = min(pairs, key=ranks.__getitem__)
        applied.append(best)
        merged, index = [], 0
        while index < len(symbols):
            if index + 1 < len(symbols) and (symbols[index], symbols[index + 1]) == best:
                merged.append(symbols[index] + symbols[index + 1])
                index += 2
            else:
                merged.append(symbols[index])
                index += 1
        symbols = merged
    return applied


def fitted_vocabulary(words=CAPTION_WORDS) -> tuple[dict[str, int], list[tuple[str, str]]]:
    """(token -> id, merges) laid out as CLIP lays out its own: bytes, bytes + </w>, merges, specials."""
    merges = [tuple(line.split()) for line in clip_vocabulary()[1]]
    ranks = {pair: rank for rank, pair in enumerate(merges)}
    needed = {pair for word in words for pair in merges_used(word, ranks)}
    kept = sorted(needed, key=ranks.__getitem__)
    symbols = list(bytes_to_unicode().values())
    tokens = symbols + [symbol + "</w>" for symbol in symbols] + ["".join(pair) for pair in kept]
    tokens += ["<|startoftext|>", "<|endoftext|>"]
    return {token: index for index, token in enumerate(tokens)}, kept


def fitted_tokenizer(words=CAPTION_WORDS, max_length: int = 77):
    from transformers import CLIPTokenizer

    vocab, merges = fitted_vocabulary(words)
    return CLIPTokenizer(vocab=vocab, merges=merges, model_max_length=max_length)
