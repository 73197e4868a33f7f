"""Pictures a person would rather look at than read: animation tracks under the waveform, and
predicted against extracted tracks."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from .constants import BLENDSHAPE_NAMES, SAMPLE_RATE

KEY_TRACKS = ("jawOpen", "mouthClose", "mouthFunnel", "mouthPucker")


def drawable(text: str) -> str:
    """A name as a figure can draw it: a file name that is not UTF-8 (its bytes kept in Python's
    surrogate escapes) with its odd bytes as the replacement character, which matplotlib can draw."""
    return text.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


def envelope(times: np.ndarray, values: np.ndarray, points: int = 3000) -> tuple[np.ndarray, np.ndarray]:
    """A long track thinned for drawing: each of `points` equal stretches gives its minimum and its
    maximum, in time order, so peaks stay visible. A 960-pixel-wide axis cannot show more, and
    matplotlib holding every frame of two hours (216,000 per line) cost about 100 MB."""
    if len(values) <= 2 * points:
        return times, values
    step = len(values) // points
    whole = len(values) // step * step
    rows = values[:whole].reshape(-1, step)
    low, high = rows.argmin(axis=1), rows.argmax(axis=1)
    first, second = np.minimum(low, high), np.maximum(low, high)
    base = np.arange(len(rows)) * step
    picks = np.stack([base + first, base + second], axis=1).reshape(-1)
    picks = np.append(picks, np.arange(whole, len(values)))
    return times[picks], values[picks]


def plot_animation(path: Path, frames, audio: np.ndarray | None = None, reference=None, title: str = "",
                   audio_rate: float = SAMPLE_RATE) -> None:
    """PNG: the waveform (if given, sampled at audio_rate), the key mouth tracks, smile (mean of
    left and right), and head pitch and yaw. `reference`: frames of another source (e.g. the
    video's extracted tracks) drawn dashed on the same axes."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from .formats import atomic_path
    from .pose import quaternion_to_euler_degrees
    rows = 4 if audio is not None else 3
    figure, axes = plt.subplots(rows, 1, figsize=(12, 2.0 * rows + 0.6), sharex=True)
    axes = list(axes)
    if audio is not None:
        t = np.arange(len(audio)) / audio_rate
        step = max(1, len(audio) // 20000)
        axes[0].plot(t[::step], audio[::step], color="grey", linewidth=0.5)
        axes[0].set_ylabel("audio")
        axes = axes[1:]

    def draw(source, style, label_suffix):
        for name, colour in zip(KEY_TRACKS, ("tab:red", "tab:blue", "tab:purple", "tab:green")):
            axes[0].plot(*envelope(source.times, source.blendshapes[:, BLENDSHAPE_NAMES.index(name)]), style,
                         color=colour, linewidth=1.0, label=name + label_suffix)
        smile = source.blendshapes[:, [BLENDSHAPE_NAMES.index("mouthSmileLeft"),
                                       BLENDSHAPE_NAMES.index("mouthSmileRight")]].mean(axis=1)
        axes[1].plot(*envelope(source.times, smile), style, color="tab:orange", linewidth=1.0, label="smile" + label_suffix)
        angles = quaternion_to_euler_degrees(source.pose[:, 3:])
        axes[2].plot(*envelope(source.times, angles[:, 0]), style, color="tab:brown", linewidth=1.0, label="pitch" + label_suffix)
        axes[2].plot(*envelope(source.times, angles[:, 1]), style, color="tab:cyan", linewidth=1.0, label="yaw" + label_suffix)

    draw(frames, "-", "")
    if reference is not None:
        draw(reference, "--", " (extracted)")
    axes[0].set_ylabel("score")
    axes[1].set_ylabel("smile")
    axes[2].set_ylabel("head °")
    axes[2].set_xlabel("seconds")
    for axis in axes:
        axis.legend(loc="upper right", fontsize=7, ncol=2)
    figure.suptitle(drawable(title), fontsize=9)
    figure.tight_layout()
    with atomic_path(path) as tmp:
        figure.savefig(tmp, dpi=80)
    plt.close(figure)
