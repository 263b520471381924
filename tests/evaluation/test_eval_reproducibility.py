"""Reproducibility block: file hashes, versions, commit, seeds, composed config, weights."""

from __future__ import annotations

import hashlib
import json
import subprocess

import pytest
from omegaconf import OmegaConf

import vid3d
from vid3d.evaluation.reproducibility import file_sha256, find_seeds, git_commit, reproducibility_block

# SHA-256 test vectors (FIPS 180-2): "" and "abc".
SHA_EMPTY = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
SHA_ABC = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"


def test_file_sha256_known_vectors(tmp_path):
    (tmp_path / "empty").write_bytes(b"")
    (tmp_path / "abc").write_bytes(b"abc")
    assert file_sha256(tmp_path / "empty") == SHA_EMPTY
    assert file_sha256(tmp_path / "abc") == SHA_ABC
    big = bytes(range(256)) * 9000  # > 1 MiB: several chunks
    (tmp_path / "big").write_bytes(big)
    assert file_sha256(tmp_path / "big") == hashlib.sha256(big).hexdigest()
    with pytest.raises(FileNotFoundError, match="nope.ckpt"):
        file_sha256(tmp_path / "nope.ckpt")


def test_block_contents(tmp_path):
    cfg = OmegaConf.create({
        "seed": 7, "model": {"name": "tiny", "init_seed": "${seed}"},
        "eval": {"trials": [{"seed": 1}, {"seed": 2}], "num_shards": 1},
    })
    ckpt = tmp_path / "last.ckpt"
    ckpt.write_bytes(b"abc")
    block = reproducibility_block(cfg, {"model": ckpt, "pose": None})
    json.dumps(block)  # JSON-ready
    assert block["vid3d_version"] == vid3d.__version__
    assert block["config"]["model"]["init_seed"] == 7  # interpolations resolved
    assert block["seeds"] == {
        "seed": 7, "model.init_seed": 7, "eval.trials[0].seed": 1, "eval.trials[1].seed": 2,
    }
    assert block["weights"] == [{"role": "model", "path": str(ckpt), "sha256": SHA_ABC, "bytes": 3}]
    libs = block["libraries"]
    for name in ("torch", "diffusers", "pycolmap", "lightning"):
        assert name in libs
    import torch

    assert libs["torch"].split("+")[0] == torch.__version__.split("+")[0]
    assert reproducibility_block({"seed": 0}, [None, ckpt])["weights"][0]["role"] is None
    with pytest.raises(FileNotFoundError):
        reproducibility_block({}, [tmp_path / "missing.pt"])


def test_git_commit_matches_git(tmp_path):
    info = git_commit()
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=vid3d.__path__[0], capture_output=True,
                              text=True, timeout=10)
    except OSError:
        pytest.skip("git not installed")
    if head.returncode == 0:
        assert info["commit"] == head.stdout.strip() and isinstance(info["dirty"], bool)
    else:
        assert info == {"commit": None, "dirty": None}
    assert git_commit(tmp_path) == {"commit": None, "dirty": None}  # not a repository


def test_find_seeds_ignores_non_seed_keys():
    config = {"seedling": 1, "a": {"seed": None, "b_seed": 3}, "seeds": [4]}
    assert find_seeds(config) == {"a.seed": None, "a.b_seed": 3}
