"""A small T5-style (SentencePiece Unigram) tokenizer built in memory, for the random-weight SD3
models: no hub, no files. It splits as T5's does (words prefixed with "▁", `</s>` at the end, `<pad>`
after it), over a vocabulary of common words and every printable character, so any prompt tokenises.
Trained SD3 models bring their own T5 tokenizer (tokenizer_3/)."""
from __future__ import annotations

import string

from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors
from transformers import T5TokenizerFast

SPECIALS = ("<pad>", "</s>", "<unk>")  # ids 0, 1, 2 as in T5
WORDS = ("a", "an", "the", "of", "photo", "picture", "painting", "cat", "dog", "tiger", "lion", "bird", "car",
         "tree", "house", "man", "woman", "on", "in", "with", "and", "sitting", "standing", "red", "blue", "green",
         "field", "grass", "table", "street", "is", "at", "by", "white", "black", "sky", "water", "flower", "apple")


def t5_tokenizer(max_length: int = 256) -> T5TokenizerFast:
    """A Unigram tokenizer in T5's manner: whole words score above their letters, letters always exist."""
    characters = string.ascii_letters + string.digits + string.punctuation
    scores = {token: 0.0 for token in SPECIALS}
    for tokens, score in ((["▁" + word for word in WORDS], -2.0), (["▁"], -3.0), (characters, -5.0),
                          (["▁" + character for character in characters], -6.0)):
        for token in tokens:
            scores.setdefault(token, score)  # one entry per piece ("▁a" is a word and a letter)
    tokenizer = Tokenizer(models.Unigram(list(scores.items()), unk_id=2))
    tokenizer.normalizer = normalizers.Sequence([normalizers.Replace("  ", " "), normalizers.Strip()])
    tokenizer.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always")
    tokenizer.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="always")
    tokenizer.post_processor = processors.TemplateProcessing(single="$A </s>", pair="$A </s> $B </s>",
                                                             special_tokens=[("</s>", 1)])
    return T5TokenizerFast(tokenizer_object=tokenizer, eos_token="</s>", unk_token="<unk>", pad_token="<pad>",
                           extra_ids=0, model_max_length=max_length)
