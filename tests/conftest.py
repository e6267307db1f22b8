"""Shared fixtures: synthetic media made with PyAV, a tiny random-weight model, the dev data."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).parent))

from fcnsync.model import FCNSyncNet, ModelConfig, checkpoint_dict  # noqa: E402

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "avdata"


@pytest.fixture(scope="session")
def tiny_model() -> FCNSyncNet:
    """A small random-weight network: every code path runs in a fraction of a second."""
    torch.manual_seed(0)
    model = FCNSyncNet(ModelConfig(channels=16, embed_dim=8, dropout=0.0))
    return model.eval()


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory: pytest.TempPathFactory, tiny_model: FCNSyncNet) -> Path:
    path = tmp_path_factory.mktemp("ckpt") / "tiny.pt"
    torch.save(checkpoint_dict(tiny_model, {"note": "random weights for tests"}), path)
    return path


@pytest.fixture(scope="session")
def dev_dir() -> Path:
    """The real development clips; tests that need them skip where the data is absent."""
    if not (SHARED / "dev").is_dir():
        pytest.skip(f"real clips not available ({SHARED / 'dev'} is absent)")
    return SHARED / "dev"
