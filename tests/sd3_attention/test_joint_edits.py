"""The joint softmax taken apart (joint_edits.py) against explicit probabilities, float64."""
import torch
import torch.nn.functional as F

from p2p_real.editing.joint_edits import image_part_and_text_slice, joint_output, replace_image_queries_keys

IMAGE, TEXT = 20, 9


def random_qkv(rows=3, heads=2, dim=8, seed=0):
    generator = torch.Generator().manual_seed(seed)
    return [torch.randn(rows, heads, IMAGE + TEXT, dim, generator=generator, dtype=torch.float64) * 1.5
            for _ in range(3)]


def test_the_text_slice_and_image_part_are_the_joint_softmax_taken_apart():
    query, key, value = random_qkv()
    scale = 0.3
    probabilities = (query @ key.transpose(-1, -2) * scale).softmax(-1)  # (P, h, n, n), explicit
    image_part, text_slice = image_part_and_text_slice(query, key, value, scale, IMAGE)
    torch.testing.assert_close(text_slice, probabilities[..., IMAGE:], rtol=1e-12, atol=1e-14)
    torch.testing.assert_close(image_part, probabilities[..., :IMAGE] @ value[:, :, :IMAGE], rtol=1e-12, atol=1e-13)
    assert 0.05 < text_slice.sum(-1).mean() < 0.95  # the text mass: a real share of each row, not all of it
    output = joint_output(image_part, text_slice, value[:, :, IMAGE:])
    torch.testing.assert_close(output, F.scaled_dot_product_attention(query, key, value, scale=scale),
                               rtol=1e-12, atol=1e-13)


def test_image_queries_and_keys_come_from_the_source_where_the_weight_is_one():
    query, key, _ = random_qkv(rows=3)
    new_query, new_key = replace_image_queries_keys(query, key, IMAGE, torch.tensor([1.0, 0.0]))
    for new, old in ((new_query, query), (new_key, key)):
        assert torch.equal(new[0], old[0])  # the source row never changes
        assert torch.equal(new[1, :, :IMAGE], old[0, :, :IMAGE])  # target 1: the source's image tokens
        assert torch.equal(new[1, :, IMAGE:], old[1, :, IMAGE:])  # and its own text tokens
        assert torch.equal(new[2], old[2])  # target 2, weight 0: untouched
