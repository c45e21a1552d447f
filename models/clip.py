"""Contrastive image and caption encoders (CLIP, Radford et al. 2021) for the shapes data.

Example::

    from models.clip import Clip, ClipConfig, train_clip, zero_shot_classify
    from models.data.shapes import make_shapes, all_captions

    data = make_shapes(512, seed=0)
    clip = Clip(ClipConfig())
    losses = train_clip(clip, data.images, data.captions, steps=20)
    best = zero_shot_classify(clip, data.images[:8], all_captions())   # [8] caption indices
    # a HookedRootModule: clip.run_with_cache(images, tokens) caches both encoders

Both encoders map into one ``d_embed``-dimensional unit sphere; a matching image and
caption should have the highest cosine similarity in their batch. Captions are tokenized
with :func:`models.data.shapes.encode_captions`, so unknown words raise a ValueError.
"""

import math
from dataclasses import dataclass

import einops
import pandas as pd
import torch
import torch.nn.functional as F
from jaxtyping import Float, Int
from torch import Tensor, nn
from transformer_lens import HookedRootModule
from transformer_lens.hook_points import HookPoint

from models.data.shapes import N_CTX, VOCAB, encode_captions
from models.denoiser import SublayerConstants, residual_mlp
from models.transformer.layer_norm import LayerNorm
from models.train import TrainConfig, train


@dataclass(frozen=True)
class ClipConfig(SublayerConstants):
    n_channels: int = 1
    height: int = 16
    width: int = 16
    d_vocab: int = len(VOCAB)
    n_ctx: int = N_CTX
    d_model: int = 128
    d_mlp: int = 256
    d_embed: int = 32
    init_temperature: float = 0.07  # Radford et al. 2021, sec. 2.5
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("n_channels", "height", "width", "d_vocab", "n_ctx", "d_model", "d_mlp", "d_embed"):
            if getattr(self, name) < 1:
                raise ValueError(f"ClipConfig.{name} must be >= 1, got {getattr(self, name)}")
        if not self.init_temperature > 0:
            raise ValueError(f"ClipConfig.init_temperature must be > 0, got {self.init_temperature}")

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return (self.n_channels, self.height, self.width)


class ImageEncoder(nn.Module):
    """Pixels -> ``W_E`` -> one residual MLP block -> ``W_proj`` -> unit vector."""

    def __init__(self, cfg: ClipConfig):
        super().__init__()
        self.cfg = cfg
        d_pixels = cfg.n_channels * cfg.height * cfg.width
        self.W_E = nn.Parameter(torch.randn(d_pixels, cfg.d_model) / math.sqrt(d_pixels))
        self.b_E = nn.Parameter(torch.zeros(cfg.d_model))
        self.ln1 = LayerNorm(cfg)
        self.mlp = residual_mlp(cfg)
        self.ln_final = LayerNorm(cfg)
        self.W_proj = nn.Parameter(torch.randn(cfg.d_model, cfg.d_embed) / math.sqrt(cfg.d_model))
        self.hook_embed = HookPoint()  # [batch d_model]
        self.hook_resid_post = HookPoint()  # [batch d_model]
        self.hook_embedding = HookPoint()  # [batch d_embed], unit norm

    def forward(self, images: Float[Tensor, "batch channel height width"]) -> Float[Tensor, "batch d_embed"]:
        if images.ndim != 4 or tuple(images.shape[1:]) != self.cfg.image_shape:
            raise ValueError(f"expected images of shape [batch {' '.join(map(str, self.cfg.image_shape))}], got "
                             f"{list(images.shape)}; resize them or build the model with matching n_channels/height/width")
        pixels = einops.rearrange(images, "batch channel height width -> batch (channel height width)")
        resid = self.hook_embed(F.gelu(pixels @ self.W_E + self.b_E))
        resid = self.hook_resid_post(resid + self.mlp(self.ln1(resid)))
        return self.hook_embedding(F.normalize(self.ln_final(resid) @ self.W_proj, dim=-1))


class CaptionEncoder(nn.Module):
    """Token and position embeddings, mean over the words, one residual MLP block, ``W_proj``.

    Mean pooling is enough here: every caption follows one template, so a word's
    position already says which attribute it describes.
    """

    def __init__(self, cfg: ClipConfig):
        super().__init__()
        self.cfg = cfg
        self.W_E = nn.Parameter(torch.randn(cfg.d_vocab, cfg.d_model) / math.sqrt(cfg.d_model))
        self.W_pos = nn.Parameter(torch.randn(cfg.n_ctx, cfg.d_model) / math.sqrt(cfg.d_model))
        self.ln1 = LayerNorm(cfg)
        self.mlp = residual_mlp(cfg)
        self.ln_final = LayerNorm(cfg)
        self.W_proj = nn.Parameter(torch.randn(cfg.d_model, cfg.d_embed) / math.sqrt(cfg.d_model))
        self.hook_embed = HookPoint()  # [batch pos d_model]
        self.hook_pos_embed = HookPoint()  # [batch pos d_model]
        self.hook_pooled = HookPoint()  # [batch d_model]
        self.hook_resid_post = HookPoint()  # [batch d_model]
        self.hook_embedding = HookPoint()  # [batch d_embed], unit norm

    def forward(self, tokens: Int[Tensor, "batch pos"]) -> Float[Tensor, "batch d_embed"]:
        if tokens.ndim != 2 or tokens.shape[1] > self.cfg.n_ctx:
            raise ValueError(f"expected tokens [batch pos] with pos <= {self.cfg.n_ctx}, got {list(tokens.shape)}")
        words = (tokens != 0).float()  # 0 is padding
        embed = self.hook_embed(self.W_E[tokens]) + self.hook_pos_embed(self.W_pos[: tokens.shape[1]].expand(tokens.shape[0], -1, -1))
        pooled = einops.einsum(embed, words, "batch pos d_model, batch pos -> batch d_model") / words.sum(-1, keepdim=True).clamp(min=1)
        resid = self.hook_pooled(pooled)
        resid = self.hook_resid_post(resid + self.mlp(self.ln1(resid)))
        return self.hook_embedding(F.normalize(self.ln_final(resid) @ self.W_proj, dim=-1))


class Clip(HookedRootModule):
    """An image encoder and a caption encoder sharing one embedding space.

    ``forward(images, tokens)`` returns the image-by-caption logits: cosine similarity
    times the learned inverse temperature (Radford et al. 2021, Figure 3).
    """

    def __init__(self, cfg: ClipConfig):
        super().__init__()
        self.cfg = cfg
        with torch.random.fork_rng(devices=[]):  # seeded, and the caller's RNG stays untouched
            torch.manual_seed(cfg.seed)
            self.image_encoder = ImageEncoder(cfg)
            self.caption_encoder = CaptionEncoder(cfg)
        self.log_inv_temperature = nn.Parameter(torch.tensor(math.log(1.0 / cfg.init_temperature)))
        self.hook_logits = HookPoint()  # [batch_image batch_caption]
        self.setup()

    def encode_image(self, images: Float[Tensor, "batch channel height width"]) -> Float[Tensor, "batch d_embed"]:
        return self.image_encoder(images)

    def encode_caption(self, captions: list[str] | str | Int[Tensor, "batch pos"]) -> Float[Tensor, "batch d_embed"]:
        """Unit embeddings of captions given as strings (tokenized here) or token ids."""
        tokens = captions if isinstance(captions, Tensor) else encode_captions(captions)
        return self.caption_encoder(tokens)

    def forward(self, images: Float[Tensor, "batch channel height width"], tokens: Int[Tensor, "n_captions pos"]) -> Float[Tensor, "batch n_captions"]:
        # Radford et al. clip the inverse temperature at 100 to keep training stable.
        scale = self.log_inv_temperature.clamp(max=math.log(100.0)).exp()
        logits = einops.einsum(self.encode_image(images), self.encode_caption(tokens), "batch d_embed, n_captions d_embed -> batch n_captions")
        return self.hook_logits(scale * logits)


def contrastive_loss(logits: Float[Tensor, "batch batch"], caption_ids: Int[Tensor, "batch"]) -> Tensor:
    """Symmetric cross-entropy over images and captions (Radford et al. 2021, Figure 3).

    With only a few dozen distinct captions a batch holds many copies of each, so every
    copy of a pair's caption counts as a positive (targets spread evenly over them, as in
    the supervised contrastive loss of Khosla et al. 2020) instead of being pushed apart.
    """
    same = (caption_ids[:, None] == caption_ids[None, :]).float()
    targets = same / same.sum(-1, keepdim=True)
    image_loss = -(targets * F.log_softmax(logits, dim=1)).sum(-1).mean()
    caption_loss = -(targets * F.log_softmax(logits.T, dim=1)).sum(-1).mean()
    return (image_loss + caption_loss) / 2


@torch.no_grad()
def zero_shot_classify(model: Clip, images: Float[Tensor, "batch channel height width"], captions: list[str]) -> Int[Tensor, "batch"]:
    """Index of the caption whose embedding is most similar to each image's (no labels used)."""
    return model(images, encode_captions(captions)).argmax(-1)


def train_clip(
    model: Clip,
    images: Float[Tensor, "batch channel height width"],
    captions: list[str],
    steps: int = 1000,
    batch_size: int = 256,
    lr: float = 2e-3,
    seed: int = 0,
    progress: bool = False,
) -> pd.DataFrame:
    """Fit both encoders with ``models.train`` (AdamW, cosine decay to zero, clipping at 1,
    no weight decay); returns the per-step history (``step``, ``loss``, ...).

    Batches are drawn from a generator seeded by ``(seed, step)``.
    """
    if len(captions) != images.shape[0]:
        raise ValueError(f"need one caption per image, got {len(captions)} captions for {images.shape[0]} images")
    if steps < 1 or batch_size < 2:
        raise ValueError(f"steps must be >= 1 and batch_size >= 2, got {steps} and {batch_size}")
    tokens = encode_captions(captions)
    _, caption_ids = torch.unique(tokens, dim=0, return_inverse=True)
    cfg = TrainConfig(steps=steps, batch_size=batch_size, lr=lr, weight_decay=0.0, min_lr_ratio=0.0, grad_clip=1.0, seed=seed)

    def batches(step: int) -> tuple[Tensor, Tensor, Tensor]:
        index = torch.randint(0, images.shape[0], (batch_size,), generator=torch.Generator().manual_seed(seed * 1_000_003 + step))
        return images[index], tokens[index], caption_ids[index]

    def loss_fn(clip: Clip, batch: tuple[Tensor, Tensor, Tensor]) -> Tensor:
        batch_images, batch_tokens, batch_ids = batch
        return contrastive_loss(clip(batch_images, batch_tokens), batch_ids)

    result = train(model, batches, loss_fn, cfg, progress=progress, desc="clip")
    model.eval()
    return pd.DataFrame(result.history)
