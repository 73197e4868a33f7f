"""voiceface: the code every stage of the voice-to-face pipeline shares.

Stage scripts live in numbered folders (not importable names); each puts the repository root on
sys.path with one line computed from its own __file__, then imports from here.
"""
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
