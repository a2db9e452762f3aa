from p2p_real.clip_tokenizer import clip_tokenizer
from p2p_real.shapes.scenes import scene_at
from p2p_real.shapes.tokenizer import fitted_tokenizer


def test_captions_split_exactly_as_clip_splits_them_with_a_small_vocabulary():
    fitted, clip = fitted_tokenizer(), clip_tokenizer()
    assert len(fitted) < 1000 < len(clip)
    for index in range(100):
        caption = scene_at(7, index).caption
        tokens = fitted.convert_ids_to_tokens(fitted(caption).input_ids)
        assert tokens == clip.convert_ids_to_tokens(clip(caption).input_ids), caption


def test_an_unseen_word_still_tokenises_into_known_pieces():
    fitted = fitted_tokenizer()
    ids = fitted("a red dog on a plain white background").input_ids
    assert fitted.unk_token_id not in ids[1:-1]
    assert "".join(fitted.convert_ids_to_tokens(ids[3:5])).replace("</w>", "") == "dog"
