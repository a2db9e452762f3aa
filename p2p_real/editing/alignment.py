"""Token-level maps between a source and a target prompt (Hertz et al. 2023, sec. 3.2 and
google/prompt-to-prompt's seq_aligner.py), written as small pure functions.

Positions are token positions in the encoder's padded sequence: CLIP's start token sits at 0 and the
first word at 1; T5 has no start token, so its first word sits at 0 (`first_word_position`).
"""
from __future__ import annotations

import torch

from ..errors import PromptError


def first_word_position(tokenizer) -> int:
    """The position of a prompt's first word token: the number of special tokens before it (CLIP 1, T5 0)."""
    word = tokenizer("a", add_special_tokens=False, verbose=False).input_ids
    return tokenizer("a", verbose=False).input_ids.index(word[0])


def word_tokens(tokenizer, prompt: str) -> list[list[int]]:
    """For each space-separated word of `prompt`, the token positions it occupies (from 1 for CLIP)."""
    first = first_word_position(tokenizer)
    positions, next_position = [], first
    for word in prompt.split(" "):
        count = len(tokenizer(word, add_special_tokens=False, verbose=False).input_ids)
        positions.append(list(range(next_position, next_position + count)))
        next_position += count
    whole = len(tokenizer(prompt, add_special_tokens=False, verbose=False).input_ids)
    if next_position - first != whole:  # CLIP's BPE encodes words independently; check rather than assume
        raise PromptError(f"the prompt {prompt!r} does not tokenize word by word; "
                          f"separate its words with single spaces")
    return positions


def token_positions(tokenizer, prompt: str, word: str) -> list[int]:
    """Token positions of every occurrence of `word` (one or more space-separated words) in `prompt`."""
    words, wanted = prompt.split(" "), word.split(" ")
    per_word = word_tokens(tokenizer, prompt)
    found = [
        position
        for start in range(len(words) - len(wanted) + 1)
        if words[start : start + len(wanted)] == wanted
        for index in range(start, start + len(wanted))
        for position in per_word[index]
    ]
    if not found:
        raise PromptError(f"the word {word!r} is not in the prompt {prompt!r}")
    return found


def replacement_mapper(tokenizer, source: str, target: str, length: int) -> torch.Tensor:
    """(length, length) map M with target_attention[..., n] = sum_w source_attention[..., w] M[w, n].

    Words at the same place map one to one; a swapped word split into k target tokens gives each
    of them 1/k of the source word's tokens. Unlike the reference's tail (`mapper[j, j]`), tokens
    after a swap whose token counts differ keep mapping to their own source token.
    """
    source_words, target_words = source.split(" "), target.split(" ")
    if len(source_words) != len(target_words):
        raise PromptError(
            f"a word swap needs the same number of words: {source!r} has {len(source_words)}, "
            f"{target!r} has {len(target_words)}; use --kind refine to add or remove words"
        )
    source_tokens, target_tokens = word_tokens(tokenizer, source), word_tokens(tokenizer, target)
    mapper = torch.zeros(length, length)
    starts = list(range(first_word_position(tokenizer)))
    mapper[starts, starts] = 1  # the start token (CLIP), none for T5
    for source_positions, target_positions in zip(source_tokens, target_tokens):
        if len(source_positions) == len(target_positions):
            mapper[source_positions, target_positions] = 1
        else:
            for position in target_positions:
                mapper[source_positions, position] = 1 / len(target_positions)
    source_end, target_end = source_tokens[-1][-1] + 1, target_tokens[-1][-1] + 1
    for offset in range(length - max(source_end, target_end)):  # end token and padding, aligned
        mapper[source_end + offset, target_end + offset] = 1
    return mapper


def global_alignment(source: list[int], target: list[int]) -> list[int]:
    """Needleman-Wunsch (gap 0, match 1, mismatch -1): for each target token, its source index or -1.

    Ties in the traceback prefer left (a gap in the source), then up, then the diagonal, as the
    reference aligner does.
    """
    rows, columns = len(source) + 1, len(target) + 1
    score = [[0] * columns for _ in range(rows)]
    trace = [[0] * columns for _ in range(rows)]  # 1 left, 2 up, 3 diagonal
    for j in range(1, columns):
        trace[0][j] = 1
    for i in range(1, rows):
        trace[i][0] = 2
    for i in range(1, rows):
        for j in range(1, columns):
            left, up = score[i][j - 1], score[i - 1][j]
            diagonal = score[i - 1][j - 1] + (1 if source[i - 1] == target[j - 1] else -1)
            score[i][j] = max(left, up, diagonal)
            trace[i][j] = 1 if score[i][j] == left else 2 if score[i][j] == up else 3
    mapping, i, j = [], len(source), len(target)
    while i > 0 or j > 0:
        if trace[i][j] == 3:
            i, j = i - 1, j - 1
            mapping.append(i)
        elif trace[i][j] == 1:
            j -= 1
            mapping.append(-1)
        else:
            i -= 1
    return mapping[::-1]


def refinement_mapper(tokenizer, source: str, target: str, length: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(indices, alphas), each (length,): target position n reads source position indices[n]; alphas
    is 1 where the token is shared and 0 where the target adds it. Padding maps to itself."""
    source_ids = tokenizer(source, verbose=False).input_ids
    target_ids = tokenizer(target, verbose=False).input_ids
    aligned = global_alignment(source_ids, target_ids)
    indices = torch.arange(length)
    alphas = torch.ones(length)
    indices[: len(aligned)] = torch.tensor(aligned)
    alphas[: len(aligned)] = (torch.tensor(aligned) != -1).float()
    indices[indices < 0] = 0  # read anything; alpha 0 discards it
    return indices, alphas


def equalizer(tokenizer, prompt: str, weights: dict[str, float], length: int) -> torch.Tensor:
    """(length,) ones, with each given word's tokens scaled by its factor (in [-2, 2])."""
    scale = torch.ones(length)
    for word, factor in weights.items():
        if not -2 <= factor <= 2:
            raise PromptError(f"the re-weight of {word!r} is {factor}; use a factor between -2 and 2")
        scale[token_positions(tokenizer, prompt, word)] = factor
    return scale
