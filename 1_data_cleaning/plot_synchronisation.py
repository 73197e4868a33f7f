"""Plot one clip as stage 1.3 synchronises it, so a person can check by eye that sound and face
line up: the mel spectrogram, loudness with voice activity, jawOpen / mouthClose / mouthFunnel
(the 100 Hz synchronised tracks as lines, the 30 fps video frames as dots), and head pitch — all
on one time axis, the video's clock.

    python 1_data_cleaning/plot_synchronisation.py --clip sample_00 --processed-dir data/processed
"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repo root, for `import voiceface`

from voiceface import REPO_ROOT
from voiceface.cli import configure

# --- settings (each can be given on the command line: CLIP as --clip) ------------------------
PROCESSED_DIR = REPO_ROOT / "data/processed"   # stage 1.1 and 1.2 outputs
CLIP = ""                       # the clip's folder name (required)
OUTPUT = ""                     # PNG path; default <processed-dir>/<clip>/synchronisation.png
START_S = 0.0                   # first second shown
END_S = 0.0                     # last second shown; 0: the whole clip
LAG_CORRECTION_MS = 0.0         # as in stage 1.3, to see a correction's effect
# --- end of settings ---------------------------------------------------------------------------

TRACKS = ("jawOpen", "mouthClose", "mouthFunnel")


def main(argv=None) -> int:
    configure(globals(), argv)
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np
    from voiceface.audio import read_audio_features
    from voiceface.constants import BLENDSHAPE_NAMES, N_BLENDSHAPES
    from voiceface.dataset import synchronize_features
    from voiceface.formats import read_blendshapes_json
    from voiceface.pose import quaternion_to_euler_degrees

    if not CLIP:
        print("error: name the clip with --clip (a folder of --processed-dir)", file=sys.stderr)
        return 1
    folder = Path(PROCESSED_DIR) / CLIP
    try:
        track = read_blendshapes_json(folder / "blendshapes_and_pose.json")
        audio = read_audio_features(folder / "audio_features.npz")
    except Exception as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    clip = synchronize_features(CLIP, track, audio, LAG_CORRECTION_MS / 1000)
    t = clip.video_times_s
    end = END_S or t[-1]
    shown = (t >= START_S) & (t <= end)
    video_t = track.times_ms / 1000
    video_shown = (video_t >= START_S) & (video_t <= end) & track.has_face

    figure, axes = plt.subplots(4, 1, figsize=(12, 8), sharex=True,
                                gridspec_kw={"height_ratios": [2.2, 1, 1.6, 1]})
    axes[0].imshow(clip.mel[shown].T, origin="lower", aspect="auto", cmap="magma", vmin=-80, vmax=-10,
                   extent=[t[shown][0] - 0.01, t[shown][-1], 0, clip.mel.shape[1]])
    axes[0].set_ylabel("mel bin")
    axes[0].set_title(f"{CLIP}: audio and face on the video's clock (audio offset "
                      f"{audio.meta['audio_offset_s'] * 1000:.0f} ms, lag correction {LAG_CORRECTION_MS:g} ms)")
    axes[1].plot(t[shown], clip.rms_db[shown], color="black", linewidth=0.8, label="RMS dBFS")
    low = float(np.min(clip.rms_db[shown]))
    axes[1].fill_between(t[shown], low, np.where(clip.vad[shown] > 0, float(np.max(clip.rms_db[shown])), low),
                         color="tab:green", alpha=0.25, step="post", label="voice activity")
    axes[1].set_ylabel("dBFS")
    axes[1].legend(loc="upper right", fontsize=8)
    for name, colour in zip(TRACKS, ("tab:red", "tab:blue", "tab:purple")):
        index = BLENDSHAPE_NAMES.index(name)
        axes[2].plot(t[shown], clip.targets[shown, index], color=colour, linewidth=1.0, label=f"{name} (100 Hz)")
        axes[2].plot(video_t[video_shown], track.blendshapes[video_shown, index], ".", color=colour, markersize=3)
    axes[2].set_ylabel("score")
    axes[2].legend(loc="upper right", fontsize=8, title="dots: video frames", title_fontsize=8)
    pitch = quaternion_to_euler_degrees(clip.targets[shown, N_BLENDSHAPES + 3:])[:, 0]
    axes[3].plot(t[shown], pitch, color="tab:orange", linewidth=1.0)
    axes[3].set_ylabel("head pitch °")
    axes[3].set_xlabel("seconds (video clock)")
    masked = ~clip.mask[shown]
    for axis in axes[1:]:
        if masked.any():
            axis.fill_between(t[shown], 0, 1, where=masked, transform=axis.get_xaxis_transform(),
                              color="grey", alpha=0.2, linewidth=0)
    figure.tight_layout()
    output = Path(OUTPUT) if OUTPUT else folder / "synchronisation.png"
    from voiceface.formats import atomic_path
    with atomic_path(output) as tmp:
        figure.savefig(tmp, dpi=80)
    print(f"wrote {output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
