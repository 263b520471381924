"""vid3d.weights against the real ``huggingface_hub`` client and a hub on 127.0.0.1
(tests/weights/_hub_server.py) serving tiny repositories in the real layouts: SVD-XT's folders (tiny
configs vid3d's tiny backbone classes accept), DUSt3R's model.safetensors, torchvision's LPIPS backbone
file. First use downloads into the HF cache under tmp_path; the second use works with the server stopped;
a gated repository's 401 is the licence line; an interrupted download is resumed, or refused with nothing
left where a loader looks."""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import time
from pathlib import Path

import pytest
import torch
from _hub_server import Hub, Repo  # tests/weights/_hub_server.py
from huggingface_hub import constants
from safetensors.torch import save as st_save

from vid3d.models.backbone import build_tiny_backbone, load_svd_backbone, save_backbone
from vid3d.models.vae import tiny_kl_autoencoder
from vid3d.weights import REGISTRY, WeightsUnavailable, fetch_hub_files, fetch_url, get, svd_files
from vid3d.weights.__main__ import main as weights_cli

SVD_XT = "stabilityai/stable-video-diffusion-img2vid-xt"
DUST3R = "naver/DUSt3R_ViTLarge_BaseDecoder_512_dpt"


@pytest.fixture
def hf(tmp_path, monkeypatch):
    """An empty HF cache and torch hub in tmp_path, online (HF_HUB_OFFLINE unset), endpoint set per test."""
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hf" / "hub"))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setenv("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    return tmp_path


def serve(monkeypatch, hub: Hub) -> Hub:
    hub.start()
    monkeypatch.setenv("HF_ENDPOINT", hub.url)
    return hub


def folder_files(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file()}


@pytest.fixture(scope="module")
def tiny_svd(tmp_path_factory) -> tuple[dict[str, bytes], dict[str, torch.Tensor]]:
    """SVD-XT's repository layout holding a tiny backbone with SVD's classes (KL VAE, CLIP), and its UNet."""
    import functools

    bb = build_tiny_backbone(vae=functools.partial(tiny_kl_autoencoder), seed=5)
    folder = save_backbone(bb, tmp_path_factory.mktemp("svd") / "svd")
    files = folder_files(folder)
    files["model_index.json"] = json.dumps({"_class_name": "StableVideoDiffusionPipeline"}).encode()
    files["feature_extractor/preprocessor_config.json"] = json.dumps({"crop_size": 224}).encode()
    return files, {k: v.clone() for k, v in bb.unet.state_dict().items()}


def test_registry_names_the_files_the_svd_loader_reads(tiny_svd):
    files, _ = tiny_svd
    assert set(svd_files()) == set(files), "the served layout is the registered file list"
    assert get("svd_xt").repo == SVD_XT and get("svd_xt").gated and get("svd").gated


def test_svd_downloads_once_then_loads_with_the_server_stopped(hf, monkeypatch, tiny_svd):
    files, unet = tiny_svd
    hub = serve(monkeypatch, Hub(repos={SVD_XT: Repo(files)}))
    try:
        bb = load_svd_backbone(weights="svd_xt")
    finally:
        hub.stop()
    assert {p for m, p in hub.log if m == "GET"} >= {f"/{SVD_XT}/resolve/main/unet/config.json"}
    for k, v in bb.unet.state_dict().items():
        assert torch.equal(v, unet[k]), k
    snap = hf / "hf" / "hub" / "models--stabilityai--stable-video-diffusion-img2vid-xt" / "snapshots"
    assert [p.name for p in snap.iterdir()] == [Repo(files).commit]
    # the server is gone: the cache answers (online: no request is made; offline too)
    n = len(hub.log)
    assert fetch_hub_files(SVD_XT, svd_files()) == snap / Repo(files).commit
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    offline = load_svd_backbone(source=SVD_XT)
    assert len(hub.log) == n
    for k, v in unet.items():
        assert torch.equal(offline.unet.state_dict()[k], v)


def test_gated_repository_401_is_the_licence_line(hf, monkeypatch, tiny_svd):
    files, _ = tiny_svd
    hub = serve(monkeypatch, Hub(repos={SVD_XT: Repo(files, gated=True)}))
    try:
        t = time.perf_counter()
        with pytest.raises(WeightsUnavailable) as e:
            load_svd_backbone(weights="svd_xt")
        assert time.perf_counter() - t < 10
    finally:
        hub.stop()
    msg = str(e.value)
    assert "\n" not in msg
    assert f"{SVD_XT} is a gated repository: accept its licence at https://huggingface.co/{SVD_XT}" in msg
    assert "HF_TOKEN" in msg


def test_offline_and_unreachable_are_one_line_within_seconds(hf, monkeypatch):
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")  # the discard port: nothing listens
    cache = hf / "hf" / "hub"
    for offline in (False, True):
        if offline:
            monkeypatch.setenv("HF_HUB_OFFLINE", "1")
        t = time.perf_counter()
        with pytest.raises(WeightsUnavailable) as e:
            load_svd_backbone(weights="svd_xt")
        assert time.perf_counter() - t < 10
        msg = str(e.value)
        assert "\n" not in msg and SVD_XT in msg and "model_index.json" in msg and str(cache) in msg
        assert f"hf download {SVD_XT} model_index.json unet/config.json" in msg
        assert ("HF_HUB_OFFLINE=1" in msg) == offline and ("not reachable" in msg) != offline


def _dust3r_file() -> bytes:
    from vid3d.evaluation.pose.dust3r import TINY_CONFIG, build_dust3r_model

    torch.manual_seed(0)
    sd = build_dust3r_model(TINY_CONFIG).state_dict()
    return st_save({k: v.contiguous() for k, v in sd.items()})


def test_interrupted_download_is_resumed(hf, monkeypatch):
    data = _dust3r_file()
    hub = serve(monkeypatch, Hub(repos={DUST3R: Repo({"model.safetensors": data})}))
    hub.truncate[f"{DUST3R}/model.safetensors"] = 1  # the first GET stops half-way
    try:
        try:
            folder = fetch_hub_files(DUST3R, ("model.safetensors",))
        except WeightsUnavailable:  # the client gave up on this call: the next one resumes
            folder = fetch_hub_files(DUST3R, ("model.safetensors",))
    finally:
        hub.stop()
    got = (folder / "model.safetensors").read_bytes()
    assert hashlib.sha256(got).hexdigest() == hashlib.sha256(data).hexdigest()
    ranged = [p for m, p in hub.log if m == "GET" and p.endswith("model.safetensors")]
    assert len(ranged) >= 2, "the body was asked for again after the interruption"
    # the pose estimator reads it as a hub id from the cache (server stopped)
    from vid3d.evaluation.pose.dust3r import TINY_CONFIG, Dust3rPoseEstimator

    est = Dust3rPoseEstimator(checkpoint=DUST3R, model_config=TINY_CONFIG, image_size=224, device="cpu")
    assert est.model is not None


def test_a_download_that_never_completes_is_refused_and_never_loaded(hf, monkeypatch):
    data = _dust3r_file()
    hub = serve(monkeypatch, Hub(repos={DUST3R: Repo({"model.safetensors": data})}))
    hub.truncate[f"{DUST3R}/model.safetensors"] = 10**6
    try:  # (huggingface_hub resumes 5 times, then gives up)
        with pytest.raises(WeightsUnavailable, match=f"{DUST3R}.*model.safetensors.*download failed"):
            fetch_hub_files(DUST3R, ("model.safetensors",))
    finally:
        hub.stop()
    repo = hf / "hf" / "hub" / "models--naver--DUSt3R_ViTLarge_BaseDecoder_512_dpt"
    assert not list(repo.glob("snapshots/*/model.safetensors")), "nothing where a loader looks"
    assert all(p.stat().st_size < len(data) for p in repo.glob("blobs/*"))


# ------------------------------------------------------------------------------------------ URL files
def _point_registry_at(monkeypatch, hub: Hub, name: str, sha256: str | None) -> None:
    entry = REGISTRY[name]
    monkeypatch.setitem(REGISTRY, name, dataclasses.replace(
        entry, url=f"{hub.url}/files/{entry.filename}", sha256=sha256, sha256_prefix=None))


def _alexnet_like_file() -> bytes:
    buf = io.BytesIO()
    torch.save({"features.0.weight": torch.randn(4, 3, 3, 3)}, buf)
    return buf.getvalue()


def test_url_weights_download_once_hash_checked_then_offline(hf, monkeypatch):
    data = _alexnet_like_file()
    hub = serve(monkeypatch, Hub(plain={"alexnet-owt-7be5be79.pth": data}))
    _point_registry_at(monkeypatch, hub, "lpips_alex", hashlib.sha256(data).hexdigest())
    try:
        path = fetch_url(get("lpips_alex"), progress=False)
    finally:
        hub.stop()
    assert path == hf / "torch" / "hub" / "checkpoints" / "alexnet-owt-7be5be79.pth"
    assert path.read_bytes() == data
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    from vid3d.evaluation.image_metrics import find_backbone_weights

    assert find_backbone_weights("alex") == path  # LPIPS finds it: no request, offline


def test_url_weights_with_a_wrong_hash_or_a_cut_body_are_not_kept(hf, monkeypatch):
    data = _alexnet_like_file()
    hub = serve(monkeypatch, Hub(plain={"alexnet-owt-7be5be79.pth": data}))
    folder = hf / "torch" / "hub" / "checkpoints"
    try:
        # the published hash prefix (7be5be79) is not this file's: refused, nothing kept
        entry = dataclasses.replace(REGISTRY["lpips_alex"], url=f"{hub.url}/files/alexnet-owt-7be5be79.pth")
        with pytest.raises(WeightsUnavailable, match="does not start with the published 7be5be79"):
            fetch_url(entry, progress=False)
        assert not list(folder.iterdir())
        _point_registry_at(monkeypatch, hub, "lpips_alex", hashlib.sha256(data).hexdigest())
        hub.truncate["alexnet-owt-7be5be79.pth"] = 1
        with pytest.raises(WeightsUnavailable, match="alexnet-owt-7be5be79.pth"):
            fetch_url(get("lpips_alex"), progress=False)
        assert not list(folder.iterdir())
    finally:
        hub.stop()


def test_cli_list_fetch_verify(hf, monkeypatch, capsys):
    data = _dust3r_file()
    hub = serve(monkeypatch, Hub(repos={DUST3R: Repo({"model.safetensors": data})}))
    sha = hashlib.sha256(data).hexdigest()
    try:
        assert weights_cli(["list", "dust3r_512"]) == 0
        assert "model.safetensors: not cached" in capsys.readouterr().out
        assert weights_cli(["fetch", "dust3r_512"]) == 0
    finally:
        hub.stop()
    capsys.readouterr()
    assert weights_cli(["list", "camera"]) == 0
    out = capsys.readouterr().out
    assert f"sha256 {sha}" in out and "used by: camera" in out and DUST3R in out
    assert weights_cli(["verify", "dust3r_512"]) == 0
    assert f"ok  sha256 {sha}" in capsys.readouterr().out
    # a cached file that no longer matches its blob's hash is named, exit 1
    blob = next((hf / "hf" / "hub").glob("models--naver--*/blobs/*"))
    blob.write_bytes(data[:-1] + b"\0")
    assert weights_cli(["verify", "dust3r_512"]) == 1
    assert "differs" in capsys.readouterr().out
    assert weights_cli(["fetch", "no-such-weights"]) == 2


def test_results_record_the_hashes_of_fetched_metric_weights(hf, monkeypatch):
    """metrics.fvd.i3d=auto and pose=dust3r (the released model's hub id) are recorded in results.json's
    reproducibility block as the cached files, with their sha256."""
    from hydra import compose, initialize_config_dir

    from vid3d.config import CONFIG_DIR
    from vid3d.tasks.common import reproducibility

    data = _dust3r_file()
    hub = serve(monkeypatch, Hub(repos={DUST3R: Repo({"model.safetensors": data})}))
    try:
        fetch_hub_files(DUST3R, ("model.safetensors",))
    finally:
        hub.stop()
    i3d = hf / "torch" / "hub" / "checkpoints" / "i3d_torchscript.pt"
    i3d.parent.mkdir(parents=True)
    i3d.write_bytes(b"not really torchscript")
    with initialize_config_dir(str(CONFIG_DIR), version_base="1.3"):
        cfg = compose("eval", overrides=["pose=dust3r", "metrics.fvd.i3d=auto"])
    rows = {w["role"]: w for w in reproducibility(cfg)["weights"]}
    assert rows["fvd_i3d"]["path"] == str(i3d)
    assert rows["fvd_i3d"]["sha256"] == hashlib.sha256(b"not really torchscript").hexdigest()
    assert rows["pose_checkpoint"]["sha256"] == hashlib.sha256(data).hexdigest()
