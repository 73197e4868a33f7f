"""Plot one clip as stage 1.3 synchronises it, so a person can check by eye that sound and face
line up: the mel spectrogram, loudness with voice activity, jawOpen / mouthClose / mouthFunnel
(the 100 Hz synchronised tracks as lines, the 30 fps video frames as dots), head pitch — all on
one time axis, the video's clock — and the sync evidence: how well the audio explains the mouth
at each lag, against what unrelated audio reaches (voiceface/sync.py).

    python 1_data_cleaning/plot_synchronisation.py --clip sample_00 --processed-dir data/processed

Without --clip, a stage 1.3 dataset's clips all at once, from its manifest, a row each: its
measured lag (for a clip stage 1.3 moved, an arrow to where the shift put it) and its confidence
against the level stage 1.3 trusts — which of your videos were out of sync, and by how much.

    python 1_data_cleaning/plot_synchronisation.py --dataset-dir data/dataset
"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repo root, for `import voiceface`

from voiceface import REPO_ROOT
from voiceface.cli import configure, run_main

# --- settings (each can be given on the command line: CLIP as --clip) ------------------------
PROCESSED_DIR = REPO_ROOT / "data/processed"   # with --clip: stage 1.1 and 1.2 outputs
CLIP = ""                       # the clip's folder name; none: every clip of --dataset-dir, from its manifest
OUTPUT = ""                     # PNG path; default <processed-dir>/<clip>/synchronisation.png, without
#                                 --clip <dataset-dir>/synchronisation.png
START_S = 0.0                   # with --clip: first second shown
END_S = 0.0                     # with --clip: last second shown; 0: the whole clip
SYNC_CORRECTION = True          # with --clip: as stage 1.3, a confident clip is shifted onto the typical lead
TYPICAL_LEAD_MS = None          # with --clip: natural, median or ms as in stage 1.3; none: --dataset-dir's lead,
#                                 else natural
DATASET_DIR = ""                # a stage 1.3 dataset: with --clip, whose typical lead to use; without, whose
#                                 clips to draw
# --- end of settings ---------------------------------------------------------------------------

TRACKS = ("jawOpen", "mouthClose", "mouthFunnel")


def draw_corpus(manifest: dict, output: Path, plt) -> int:
    """Every clip of a dataset, a row each (most confident on top): its measured lag, an arrow to
    where the applied shift put a moved clip, the typical lead; beside it the confidence against
    the level stage 1.3 trusts. Reads the manifest only."""
    from collections import Counter
    import numpy as np
    from voiceface.formats import atomic_path
    from voiceface.plots import drawable
    from voiceface.sync import BY_ESTIMATE, BY_HAND, BY_SECOND_PASS, CORRECTION_OFF, UNSURE_KEPT
    # how stage 1.3 handled each clip's offset (the manifest's "correction"): label, colour, moved
    kinds = {BY_ESTIMATE: ("moved onto the lead, its lag measured", "tab:red", True),
             BY_SECOND_PASS: ("moved by the second pass (a model's jaw)", "tab:purple", True),
             BY_HAND: ("set by hand (--clip-lag-corrections)", "tab:blue", True),
             UNSURE_KEPT: ("unsure, kept as it was", "grey", False),
             CORRECTION_OFF: ("not corrected (--no-sync-correction)", "grey", False)}
    clips = sorted(manifest["clips"], key=lambda c: -c["sync"]["confidence"])
    lead_ms = manifest["sync"]["typical_lead_ms"]
    rows = np.arange(len(clips))
    figure, (lags, trust) = plt.subplots(1, 2, figsize=(12, 1.6 + 0.24 * len(clips)), sharey=True,
                                         gridspec_kw={"width_ratios": [3, 1]}, layout="constrained")
    colours = []
    for row, clip in zip(rows, clips):
        sync = clip["sync"]
        label, colour, moved = kinds.get(sync["correction"], (sync["correction"], "black", True))
        colours.append(colour)
        lags.scatter(sync["measured_lag_ms"], row, s=36, facecolors=colour if moved else "none", edgecolors=colour,
                     zorder=3, label=label)
        if moved and sync["applied_shift_ms"]:          # the lag after the shift: measured again, else lag - shift
            after = sync.get("lag_after_ms", sync["measured_lag_ms"] - sync["applied_shift_ms"])
            lags.annotate("", xy=(after, row), xytext=(sync["measured_lag_ms"], row),
                          arrowprops={"arrowstyle": "->", "color": colour, "linewidth": 1.2})
    handles = dict(zip(*reversed(lags.get_legend_handles_labels())))   # one entry per kind
    lags.axvline(lead_ms, color="tab:green", linestyle="--", linewidth=1.0)
    handles[f"the typical lead, {lead_ms:g} ms"] = lags.get_lines()[-1]
    lags.legend(handles.values(), handles.keys(), loc="upper right", fontsize=8)
    lags.set_yticks(rows, [f"{drawable(c['clip'])} ({c['duration_s']:.0f} s)" for c in clips], fontsize=8)
    lags.invert_yaxis()
    lags.set_xlabel("measured lag ms (< 0: the mouth moves before the sound); arrow: after the shift")
    lags.grid(axis="x", alpha=0.3)
    left, right = lags.get_xlim()            # at least +-100 ms around the lead: a shift of 8 ms looks like one
    lags.set_xlim(min(left, lead_ms - 100), max(right, lead_ms + 100))
    trust.barh(rows, [c["sync"]["confidence"] for c in clips], color=colours, alpha=0.7)
    trust.axvline(1.0, color="black", linestyle=":", linewidth=1.0)
    trust.set_xlabel("confidence (1: what unrelated\nspeech reaches, 99 %)")
    counts = Counter(kinds.get(c["sync"]["correction"], (c["sync"]["correction"],))[0] for c in clips)
    said = "; ".join(f"{label}: {n}" for label, n in counts.items())
    dropped = manifest["sync"].get("dropped_as_unsure", [])
    lags.set_title(f"{len(clips)} clips: {said}" + (f"; {len(dropped)} dropped as unsure, not drawn" if dropped else ""),
                   fontsize=9, loc="left")
    with atomic_path(output) as tmp:
        figure.savefig(tmp, dpi=80)
    largest = max(abs(c["sync"]["applied_shift_ms"]) for c in clips)
    print(f"{len(clips)} clips: {said}; the largest shift {largest:.0f} ms"
          + (f"; {len(dropped)} dropped as unsure" if dropped else ""))
    print(f"wrote {output}")
    return 0


def main(argv=None) -> int:
    configure(globals(), argv)
    from voiceface.cli import out_of_range
    if problem := out_of_range(("--start-s", START_S, 0, False),
                               *([("--end-s", END_S, START_S, True, "or 0: the whole clip")] if END_S else [])):
        print(f"error: {problem}", file=sys.stderr)
        return 2
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np
    from voiceface.audio import read_audio_features
    from voiceface.constants import BLENDSHAPE_NAMES, N_BLENDSHAPES
    from voiceface.dataset import read_dataset_manifest, synchronize_features
    from voiceface.errors import InputError
    from voiceface.formats import read_blendshapes_json
    from voiceface.plots import drawable
    from voiceface.pose import quaternion_to_euler_degrees
    from voiceface import sync

    if not CLIP and not DATASET_DIR:
        print("error: name the clip with --clip (a folder of --processed-dir), or give --dataset-dir to draw every "
              "clip's offset", file=sys.stderr)
        return 1
    if not CLIP:
        try:
            manifest = read_dataset_manifest(DATASET_DIR)
        except InputError as error:
            print(f"error: {error}", file=sys.stderr)
            return 1
        return draw_corpus(manifest, Path(OUTPUT) if OUTPUT else Path(DATASET_DIR) / "synchronisation.png", plt)
    if DATASET_DIR and TYPICAL_LEAD_MS is not None:        # the dataset's lead would be silently ignored
        print("error: give --typical-lead-ms or --dataset-dir (whose lead is used), not both", file=sys.stderr)
        return 2
    try:
        dataset_lead_s = read_dataset_manifest(DATASET_DIR)["sync"]["typical_lead_ms"] / 1000 if DATASET_DIR else None
    except InputError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    folder = Path(PROCESSED_DIR) / CLIP
    try:
        track = read_blendshapes_json(folder / "blendshapes_and_pose.json")
        audio = read_audio_features(folder / "audio_features.npz")
    except Exception as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    clip = synchronize_features(CLIP, track, audio)
    estimate = sync.estimate_clip_lag(clip.targets, clip.mel, clip.mask)
    lead_s = sync.NATURAL_LEAD_S
    if TYPICAL_LEAD_MS is not None:
        try:
            lead_s = sync.lead_from_setting(TYPICAL_LEAD_MS, {CLIP: estimate})[0]   # "median": this clip's own lag
        except ValueError as error:
            print(f"error: {error}", file=sys.stderr)
            return 1
    elif DATASET_DIR:
        lead_s = dataset_lead_s
    shift_s = sync.correction_s(estimate, lead_s) if SYNC_CORRECTION else 0.0
    mouth = sync.box_smooth(np.nan_to_num(sync.mouth_track(clip.targets)), sync.SMOOTH_S)
    lags, evidence = sync.evidence_by_lag(mouth, sync.band_envelopes(clip.mel), clip.mask,
                                          int(sync.SEARCH_S * 100))
    if shift_s:
        clip = synchronize_features(CLIP, track, audio, shift_s)
    t = clip.video_times_s
    end = END_S or t[-1]
    shown = (t >= START_S) & (t <= end)
    video_t = track.times_ms / 1000 - shift_s          # where the correction puts each video frame
    video_shown = (video_t >= START_S) & (video_t <= end) & track.has_face
    if not shown.any() or not video_shown.any():
        span = f"from {START_S:g} s" + (f" to {END_S:g} s" if END_S else " on")
        print(f"error: {CLIP}: nothing to draw {span} (the clip lasts {t[-1]:.1f} s); give --start-s and --end-s "
              "within it", file=sys.stderr)
        return 1

    figure = plt.figure(figsize=(12, 10))
    grid = figure.add_gridspec(5, 1, height_ratios=[2.2, 1, 1.6, 1, 1.3], hspace=0.45)
    axes = [figure.add_subplot(grid[0])]
    axes += [figure.add_subplot(grid[k], sharex=axes[0]) for k in (1, 2, 3)]
    lag_axis = figure.add_subplot(grid[4])
    axes[0].imshow(clip.mel[shown].T, origin="lower", aspect="auto", cmap="magma", vmin=-80, vmax=-10,
                   extent=[t[shown][0] - 0.01, t[shown][-1], 0, clip.mel.shape[1]])
    axes[0].set_ylabel("mel bin")
    axes[0].set_title(f"{drawable(CLIP)}: audio and face on one clock (audio offset "
                      f"{audio.meta['audio_offset_s'] * 1000:.0f} ms; measured lag {estimate.lag_s * 1000:.0f} ms, "
                      f"confidence {estimate.confidence:.2f},\nvideo moved {-shift_s * 1000:+.0f} ms to put it on the typical lead "
                      f"{lead_s * 1000:.0f} ms)", fontsize=10)
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
    axes[3].set_xlabel("seconds (the audio's times on the video clock; video frames where the correction puts them)")
    masked = ~clip.mask[shown]
    for axis in axes[1:]:
        if masked.any():
            axis.fill_between(t[shown], 0, 1, where=masked, transform=axis.get_xaxis_transform(),
                              color="grey", alpha=0.2, linewidth=0)
    chance = sync.CHANCE_Z / np.sqrt(clip.mask.sum() / 100)
    lag_axis.plot(lags * 10, evidence, color="black", linewidth=1.0, label="evidence (cross-validated r)")
    lag_axis.axhline(chance, color="grey", linestyle=":", label="99 % of unrelated audio stays below")
    lag_axis.axvline(estimate.lag_s * 1000, color="tab:red", linewidth=1.0, label="measured lag")
    lag_axis.axvline(lead_s * 1000, color="tab:green", linestyle="--", linewidth=1.0, label="typical lead")
    lag_axis.set_xlabel("lag ms (< 0: the mouth moves first), before correction")
    lag_axis.set_ylabel("evidence")
    lag_axis.legend(loc="upper right", fontsize=7)
    output = Path(OUTPUT) if OUTPUT else folder / "synchronisation.png"
    from voiceface.formats import atomic_path
    with atomic_path(output) as tmp:
        figure.savefig(tmp, dpi=80)
    print(f"wrote {output}")
    return 0


if __name__ == "__main__":
    sys.exit(run_main(main))
