"""The voice-to-face model, defined once: stage 2 trains it, stage 3 runs it (offline and
streaming). Import with the folder 2_architecture_training on sys.path: `from models import ...`."""
from .tcn_10s_model import BLENDSHAPE_OUTPUTS, PRESETS, TCNConfig, VoiceToFaceTCN

__all__ = ["BLENDSHAPE_OUTPUTS", "PRESETS", "TCNConfig", "VoiceToFaceTCN"]
