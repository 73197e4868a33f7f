"""Checkpoints: what a trained model needs to run anywhere, and the checks that refuse a
checkpoint made with other constants, another format version, or a damaged file."""
from __future__ import annotations

import hashlib
import subprocess
from pathlib import Path

import torch

from .tcn_10s_model import TCNConfig, VoiceToFaceTCN

CHECKPOINT_FORMAT = "voiceface/checkpoint"
CHECKPOINT_FORMAT_VERSION = 3     # 2: depthwise weights (kernel, channels); 3: input statistics in the model


def git_commit(repo: Path) -> str:
    try:
        return subprocess.run(["git", "rev-parse", "HEAD"], cwd=repo, capture_output=True, text=True,
                              timeout=10).stdout.strip() or "unknown"
    except Exception:
        return "unknown"


def file_sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def save_checkpoint(path: Path, model: VoiceToFaceTCN, **contents) -> None:
    """Write atomically: a temporary file beside `path`, then a rename."""
    from voiceface.formats import atomic_path
    checkpoint = {"format": CHECKPOINT_FORMAT, "format_version": CHECKPOINT_FORMAT_VERSION,
                  "model_config": model.config.to_dict(),
                  "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()}, **contents}
    with atomic_path(path) as tmp:
        torch.save(checkpoint, tmp)


def load_checkpoint(path: str | Path, device: str | torch.device = "cpu") -> tuple[VoiceToFaceTCN, dict]:
    """The model (in eval mode) and the checkpoint's contents. Raises FormatError (one line) for a
    damaged file, another format version, or constants that differ from this code's."""
    from voiceface.audio import front_end_differences
    from voiceface.constants import BLENDSHAPE_NAMES, POSE_NAMES
    from voiceface.dataset import normalisation_config
    from voiceface.errors import FormatError
    from voiceface.formats import config_differences
    path = Path(path)
    if not path.exists():
        raise FormatError(f"{path}: no such checkpoint; check the path, or train one with "
                          "2_architecture_training/train.py")
    try:
        checkpoint = torch.load(path, map_location=device, weights_only=True)
    except Exception as error:
        raise FormatError(f"{path}: not a readable checkpoint ({type(error).__name__}: "
                          f"{str(error).splitlines()[0][:120]}); re-train or copy it again") from None
    if not isinstance(checkpoint, dict) or checkpoint.get("format") != CHECKPOINT_FORMAT:
        raise FormatError(f"{path}: not a voiceface checkpoint; pass a best.pt or last.pt from train.py")
    if checkpoint.get("format_version") != CHECKPOINT_FORMAT_VERSION:
        raise FormatError(f"{path}: checkpoint format version {checkpoint.get('format_version')}, this code reads "
                          f"{CHECKPOINT_FORMAT_VERSION}; re-train with this version")
    different = front_end_differences(checkpoint.get("front_end"))
    if different:
        raise FormatError(f"{path}: trained with other audio front-end constants ({', '.join(different)}); "
                          "re-train it with this code")
    different = config_differences(normalisation_config(), checkpoint.get("normalisation"))
    if different:
        raise FormatError(f"{path}: trained with another normalisation of its inputs or targets "
                          f"({', '.join(different)}); re-train it with this code")
    if tuple(checkpoint.get("blendshape_names", ())) != BLENDSHAPE_NAMES or \
            tuple(checkpoint.get("pose_names", ())) != POSE_NAMES:
        raise FormatError(f"{path}: its blendshape or pose names differ from this code's; re-train it")
    try:
        model = VoiceToFaceTCN(TCNConfig.from_dict(checkpoint["model_config"]))
        model.load_state_dict(checkpoint["state_dict"])
    except (TypeError, KeyError, RuntimeError) as error:
        raise FormatError(f"{path}: its weights do not fit this model code ({type(error).__name__}: "
                          f"{str(error).splitlines()[0][:120]}); re-train it with this version") from None
    return model.to(device).eval(), checkpoint
