"""Autoencoders behind one small interface used by the rest of vid3d.

Interface (both classes):
    encode_latents(x, sample=False, generator=None, scaled=True) -> z
        x: (N, 3, H, W) images in [-1, 1]; z: (N, C, H/f, W/f).
        ``scaled=True`` multiplies by ``scaling_factor`` (the diffusion latent space);
        ``scaled=False`` returns the raw latent, which is what SVD concatenates as the conditioning
        image latent (the diffusers SVD pipeline uses ``latent_dist.mode()`` without scaling).
    decode_latents(z, num_frames) -> x
        z: (N, C, h, w) *scaled* latents, N = batch * num_frames in frame-major-per-video order
        (video b occupies rows b*num_frames .. (b+1)*num_frames - 1); x: (N, 3, h*f, w*f).
    attributes: latent_channels, downscale (f), scaling_factor.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

SVD_SCALING_FACTOR = 0.18215


class PixelUnshuffleAutoencoder(nn.Module):
    """Lossless, parameter-free stand-in VAE: pixel-unshuffle by ``factor`` (scaling factor 1).

    (N, 3, H, W) -> (N, 3 * factor^2, H / factor, W / factor); ``decode_latents`` is the exact inverse.
    H and W must be divisible by ``factor``.
    """

    scaling_factor: float = 1.0

    def __init__(self, factor: int = 4, in_channels: int = 3) -> None:
        super().__init__()
        if factor < 1:
            raise ValueError(f"factor must be >= 1, got {factor}")
        self.factor = int(factor)
        self.in_channels = int(in_channels)

    @property
    def latent_channels(self) -> int:
        return self.in_channels * self.factor**2

    @property
    def downscale(self) -> int:
        return self.factor

    def encode_latents(
        self,
        x: torch.Tensor,
        sample: bool = False,
        generator: torch.Generator | None = None,
        scaled: bool = True,
    ) -> torch.Tensor:
        """(N, 3, H, W) -> (N, 3 f^2, H/f, W/f). Deterministic; ``sample``/``generator`` are ignored."""
        if x.ndim != 4 or x.shape[1] != self.in_channels:
            raise ValueError(f"expected (N, {self.in_channels}, H, W) images, got {tuple(x.shape)}")
        h, w = x.shape[-2:]
        if h % self.factor or w % self.factor:
            raise ValueError(f"image size {h}x{w} is not divisible by the pixel factor {self.factor}")
        return F.pixel_unshuffle(x, self.factor)

    def decode_latents(self, z: torch.Tensor, num_frames: int | None = None) -> torch.Tensor:
        """(N, 3 f^2, h, w) -> (N, 3, h f, w f), the exact inverse of ``encode_latents``."""
        if z.ndim != 4 or z.shape[1] != self.latent_channels:
            raise ValueError(f"expected (N, {self.latent_channels}, h, w) latents, got {tuple(z.shape)}")
        return F.pixel_shuffle(z, self.factor)


def tiny_kl_autoencoder(
    channels: tuple[int, ...] = (32, 32, 32), latent_channels: int = 4
) -> TemporalVAEAdapter:
    """A random-init ``AutoencoderKLTemporalDecoder`` (SVD's VAE class; downscale 2^(len(channels)-1)) in
    the adapter: the tiny backbone's KL VAE, for plumbing tests of the real VAE path."""
    from diffusers import AutoencoderKLTemporalDecoder

    kl = AutoencoderKLTemporalDecoder(
        in_channels=3,
        out_channels=3,
        down_block_types=("DownEncoderBlock2D",) * len(channels),
        block_out_channels=tuple(channels),
        layers_per_block=1,
        latent_channels=latent_channels,
    )
    return TemporalVAEAdapter(kl)


class TemporalVAEAdapter(nn.Module):
    """Wraps diffusers' ``AutoencoderKLTemporalDecoder`` (the SVD VAE) with the vid3d interface.

    encode: ``vae.encode(x).latent_dist`` -> mode (default) or a sample, times ``scaling_factor``
    (0.18215 for SVD) when ``scaled``. decode: ``vae.decode(z / scaling_factor, num_frames)`` in
    chunks of ``decode_chunk_size`` frames (a multiple of num_frames keeps whole videos together).
    """

    def __init__(self, vae: nn.Module, decode_chunk_size: int | None = None) -> None:
        super().__init__()
        self.vae = vae
        self.decode_chunk_size = decode_chunk_size

    @property
    def scaling_factor(self) -> float:
        return float(getattr(self.vae.config, "scaling_factor", SVD_SCALING_FACTOR))

    @property
    def latent_channels(self) -> int:
        return int(self.vae.config.latent_channels)

    @property
    def downscale(self) -> int:
        return 2 ** (len(self.vae.config.block_out_channels) - 1)

    def encode_latents(
        self,
        x: torch.Tensor,
        sample: bool = False,
        generator: torch.Generator | None = None,
        scaled: bool = True,
    ) -> torch.Tensor:
        """(N, 3, H, W) in [-1, 1] -> (N, C, H/f, W/f)."""
        dtype = next(self.vae.parameters()).dtype
        dist = self.vae.encode(x.to(dtype)).latent_dist
        z = dist.sample(generator) if sample else dist.mode()
        z = z.to(x.dtype)
        return z * self.scaling_factor if scaled else z

    def decode_latents(self, z: torch.Tensor, num_frames: int) -> torch.Tensor:
        """(N, C, h, w) scaled latents, N = B * num_frames -> (N, 3, h f, w f) images."""
        if z.shape[0] % num_frames:
            raise ValueError(f"{z.shape[0]} latents is not a multiple of num_frames={num_frames}")
        dtype, out_dtype = next(self.vae.parameters()).dtype, z.dtype
        z = (z / self.scaling_factor).to(dtype)
        chunk = self.decode_chunk_size or z.shape[0]
        chunk = max(num_frames, chunk - chunk % num_frames)
        outs = [
            self.vae.decode(z[i : i + chunk], num_frames=num_frames).sample
            for i in range(0, z.shape[0], chunk)
        ]
        return torch.cat(outs).to(out_dtype)
