"""Tiny random SD3 transformers and fresh random inputs for the joint-attention tests (float64)."""
from __future__ import annotations

import torch
from diffusers import SD3Transformer2DModel

CLIP_TOKENS, T5_TOKENS = 77, 256  # SD3's text sequence: 333 keys


def tiny_transformer(seed: int = 0, num_layers: int = 2, dual: bool = False, qk_norm: str | None = None,
                     sample_size: int = 8) -> SD3Transformer2DModel:
    """The fast tests' tiny SD3 transformer; `dual` adds SD3.5-medium's image-only attn2 to block 0 and
    `qk_norm="rms_norm"` SD3.5's qk-norm. The last block is context_pre_only, as in every SD3."""
    torch.manual_seed(seed)
    model = SD3Transformer2DModel(
        sample_size=sample_size, patch_size=1, in_channels=4, num_layers=num_layers, attention_head_dim=8,
        num_attention_heads=4, caption_projection_dim=32, joint_attention_dim=32, pooled_projection_dim=64,
        out_channels=4, qk_norm=qk_norm, dual_attention_layers=(0,) if dual else (),
    )
    with torch.no_grad():  # random weights everywhere, AdaLN-zero gates included, so every path counts
        for name, parameter in model.named_parameters():
            # qk-norm scales near 1 (as trained ones are), else the logits shrink and every map is flat
            parameter.normal_(2.0 if ".norm_" in name else 0.0, 0.3)
    return model.double().eval()


def random_inputs(batch: int, seed: int, size: tuple[int, int] = (8, 8), text_tokens: int = CLIP_TOKENS + T5_TOKENS):
    generator = torch.Generator().manual_seed(seed)

    def draw(*shape):
        return torch.randn(*shape, generator=generator, dtype=torch.float64)

    return {"hidden_states": draw(batch, 4, *size), "encoder_hidden_states": draw(batch, text_tokens, 32),
            "pooled_projections": draw(batch, 64),
            "timestep": torch.rand(batch, generator=generator, dtype=torch.float64) * 1000}


def run(model: SD3Transformer2DModel, processors, inputs) -> torch.Tensor:
    """One forward under `processors` (a processor or a dict by name); the previous ones are restored."""
    previous = dict(model.attn_processors)
    model.set_attn_processor(processors)
    try:
        with torch.no_grad():
            return model(**inputs).sample
    finally:
        model.set_attn_processor(previous)


def t5_like_tokenizer(max_length: int = T5_TOKENS):
    """A SentencePiece-Unigram tokenizer in T5's manner, in memory: words prefixed with "▁", no start
    token, `</s>` at the end; words outside its small vocabulary split into letters (several tokens)."""
    import string

    from tokenizers import Tokenizer, models, pre_tokenizers, processors
    from transformers import T5TokenizerFast

    scores = {"<pad>": 0.0, "</s>": 0.0, "<unk>": 0.0}
    for word in ("a", "photo", "of", "cat", "dog", "tabby", "on", "the", "grass", "red", "car"):
        scores["▁" + word] = -2.0
    scores.setdefault("▁", -3.0)
    for character in string.ascii_lowercase:
        scores.setdefault(character, -5.0)
    tokenizer = Tokenizer(models.Unigram(list(scores.items()), unk_id=2))
    tokenizer.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always")
    tokenizer.post_processor = processors.TemplateProcessing(single="$A </s>", special_tokens=[("</s>", 1)])
    return T5TokenizerFast(tokenizer_object=tokenizer, eos_token="</s>", unk_token="<unk>", pad_token="<pad>",
                           extra_ids=0, model_max_length=max_length)
