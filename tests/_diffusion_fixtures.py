"""Tiny random diffusers/transformers parts the diffusion-backend tests build offline and save in the
real folder layouts (CLIP tokenizer from an in-memory vocab, CLIP text encoders, a VAE)."""
from __future__ import annotations

import torch


def tiny_tokenizer(max_length: int = 16):
    from transformers import CLIPTokenizer

    letters = [chr(c) for c in range(ord("a"), ord("z") + 1)]
    tokens = ["<|startoftext|>", "<|endoftext|>"] + letters + [c + "</w>" for c in letters] + ["id</w>"]
    vocab = {t: i for i, t in enumerate(tokens)}
    # vocab=/merges= objects: transformers 5 silently ignores vocab_file=
    return CLIPTokenizer(vocab=vocab, merges=[("i", "d</w>")], model_max_length=max_length)


def tiny_text_encoder(hidden: int, vocab: int, with_projection: bool = False, projection_dim: int = 32, seed: int = 0):
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

    torch.manual_seed(seed)
    cfg = CLIPTextConfig(
        hidden_size=hidden, intermediate_size=37, num_attention_heads=4, num_hidden_layers=1, vocab_size=vocab,
        max_position_embeddings=16, bos_token_id=0, eos_token_id=1, pad_token_id=1, projection_dim=projection_dim,
    )
    return (CLIPTextModelWithProjection if with_projection else CLIPTextModel)(cfg).eval()


def tiny_vae():
    from diffusers import AutoencoderKL

    torch.manual_seed(0)
    return AutoencoderKL(
        block_out_channels=[8, 16], in_channels=3, out_channels=3, latent_channels=4, norm_num_groups=8,
        down_block_types=["DownEncoderBlock2D"] * 2, up_block_types=["UpDecoderBlock2D"] * 2,
    )
