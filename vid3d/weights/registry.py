"""What each benchmark needs: every pretrained file vid3d can use, where it comes from, what it must be.

Two kinds of source:

- ``HubWeights``: files of a Hugging Face hub repository at a revision, fetched with ``huggingface_hub``
  into the standard Hugging Face cache (``$HF_HOME/hub``, ``HF_HUB_CACHE``), the cache diffusers and
  transformers use: a folder fetched by either is reused by the other.
- ``UrlWeights``: one file at a fixed URL (torchvision's ImageNet weights, RoMa, DINOv2, the I3D
  TorchScript), fetched into torch hub's cache (``$TORCH_HOME/hub/checkpoints``), where torchvision and
  ``torch.hub.load_state_dict_from_url`` keep the same files.

``sha256`` is given where it is published (torchvision and ``hub.load_state_dict_from_url`` name files by
the first 8 hex digits of it: ``sha256_prefix``); a fetched file that does not match is deleted and refused.
Sizes and hashes not known here are shown by ``python -m vid3d.weights list`` once the file is cached.

The registry is code, reviewed like code: a file a user receives (a checkpoint, an exported folder) can
name an entry (``weights: svd_xt``) but never a repository, revision or URL.
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["BENCHMARKS", "REGISTRY", "HubWeights", "UrlWeights", "get"]


@dataclass(frozen=True)
class HubWeights:
    """Files of a Hugging Face hub repository (paths inside the repository, ``/``-separated)."""

    name: str
    description: str
    repo: str
    files: tuple[str, ...]
    revision: str = "main"
    gated: bool = False  # the model page asks to accept a licence; downloads need a token (HF_TOKEN)
    sha256: dict[str, str] = field(default_factory=dict)  # path -> sha256, where known

    @property
    def page(self) -> str:
        return f"https://huggingface.co/{self.repo}"

    def fetch_command(self, revision: str | None = None) -> str:
        rev = revision or self.revision
        files = " ".join(self.files)
        return f"hf download {self.repo} {files}" + ("" if rev == "main" else f" --revision {rev}")


@dataclass(frozen=True)
class UrlWeights:
    """One file at a fixed URL, cached in torch hub's ``checkpoints`` folder under ``filename``."""

    name: str
    description: str
    url: str
    filename: str
    sha256: str | None = None
    sha256_prefix: str | None = None  # torchvision's convention: the file name carries the hash's start

    def fetch_command(self) -> str:
        return f"python -m vid3d.weights fetch {self.name}"


# The folders diffusers' StableVideoDiffusionPipeline reads (model_index.json names them).
SVD_COMPONENTS = ("unet", "vae", "image_encoder", "feature_extractor")


def svd_files(variant: str | None = None) -> tuple[str, ...]:
    """The files of an SVD repository that ``load_svd_backbone`` reads (``variant``: e.g. "fp16")."""
    v = f".{variant}" if variant else ""
    return (
        "model_index.json",
        "unet/config.json",
        f"unet/diffusion_pytorch_model{v}.safetensors",
        "vae/config.json",
        f"vae/diffusion_pytorch_model{v}.safetensors",
        "image_encoder/config.json",
        f"image_encoder/model{v}.safetensors",
        "feature_extractor/preprocessor_config.json",
    )


_SVD_NOTE = "gated: accept the licence on the model page, then set HF_TOKEN"
REGISTRY: dict[str, HubWeights | UrlWeights] = {
    w.name: w
    for w in (
        HubWeights(
            "svd",
            f"Stable Video Diffusion img2vid, 14 frames (UNet, VAE, CLIP image encoder); {_SVD_NOTE}",
            "stabilityai/stable-video-diffusion-img2vid",
            svd_files(),
            gated=True,
        ),
        HubWeights(
            "svd_xt",
            f"Stable Video Diffusion img2vid-xt, 25 frames (UNet, VAE, CLIP image encoder); {_SVD_NOTE}",
            "stabilityai/stable-video-diffusion-img2vid-xt",
            svd_files(),
            gated=True,
        ),
        HubWeights(
            "dust3r_512",
            "DUSt3R ViT-L/BaseDecoder 512 DPT (pose=dust3r)",
            "naver/DUSt3R_ViTLarge_BaseDecoder_512_dpt",
            ("model.safetensors",),  # the model's configuration is vid3d's RELEASED_512_CONFIG
        ),
        UrlWeights(
            "lpips_alex",
            "torchvision AlexNet ImageNet weights, LPIPS' backbone (metrics.lpips.net=alex)",
            "https://download.pytorch.org/models/alexnet-owt-7be5be79.pth",
            "alexnet-owt-7be5be79.pth",
            sha256_prefix="7be5be79",
        ),
        UrlWeights(
            "lpips_vgg",
            "torchvision VGG16 ImageNet weights, LPIPS' backbone (metrics.lpips.net=vgg)",
            "https://download.pytorch.org/models/vgg16-397923af.pth",
            "vgg16-397923af.pth",
            sha256_prefix="397923af",
        ),
        UrlWeights(
            "i3d",
            "I3D Kinetics-400 TorchScript (StyleGAN-V's FVD network; metrics.fvd.i3d)",
            "https://www.dropbox.com/s/ge9e5ujwgetktms/i3d_torchscript.pt?dl=1",
            "i3d_torchscript.pt",
        ),
        UrlWeights(
            "roma_outdoor",
            "RoMa outdoor matcher (overlap estimator roma: overlap.roma.weights)",
            "https://github.com/Parskatt/storage/releases/download/roma/roma_outdoor.pth",
            "roma_outdoor.pth",
        ),
        UrlWeights(
            "dinov2_vitl14",
            "DINOv2 ViT-L/14, RoMa's encoder (overlap.roma.dinov2_weights)",
            "https://dl.fbaipublicfiles.com/dinov2/dinov2_vitl14/dinov2_vitl14_pretrain.pth",
            "dinov2_vitl14_pretrain.pth",
        ),
    )
}

# What each use needs (``python -m vid3d.weights list|fetch <benchmark>``).
BENCHMARKS: dict[str, tuple[str, ...]] = {
    "train-svd": ("svd",),
    "train-svd-xt": ("svd_xt",),
    "camera": ("i3d", "dust3r_512"),  # metrics.fvd.i3d=auto, pose=dust3r
    "sparse": ("lpips_alex",),
    "recon": ("lpips_alex",),
    "overlap-index": ("roma_outdoor", "dinov2_vitl14"),
}


def get(name: str) -> HubWeights | UrlWeights:
    """The registry entry ``name`` (KeyError naming the known ones)."""
    try:
        return REGISTRY[name]
    except KeyError:
        raise KeyError(f"unknown weights {name!r}; known: {', '.join(sorted(REGISTRY))}") from None


def entry_for_repo(repo: str) -> HubWeights | None:
    """The hub entry whose repository is ``repo`` (None if vid3d does not list it)."""
    return next((w for w in REGISTRY.values() if isinstance(w, HubWeights) and w.repo == repo), None)
