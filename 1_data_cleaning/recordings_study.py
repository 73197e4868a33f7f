"""The measurements behind voiceface/recordings.py, on any folder of recordings (a study, not a stage):

1. found: a 5 s excerpt of each clip of 9 s or more, changed as voiceface/degrade.py changes sound
   for the worse-sound tables (a phone line, MP3, 20-40 dB quieter, a room, pink noise, the babble
   of four other clips), searched for against its whole clip: how many are found at the excerpt's
   true offset, with each log-mel floored under its own level (the search as built) and with the
   fixed -80 dB floor it had before;
2. the envelope check: for every candidate offset of every pair of clips and of every excerpt
   against its clip, the loudness envelopes' r over the overlap beside the spectrogram's r, so the
   lowest envelope r of a candidate that reaches MIN_R and the highest spectrogram r of one under
   MIN_ENVELOPE_R can be read; and whether the search with the check finds what checking every
   candidate finds.

    python 1_data_cleaning/recordings_study.py --raw-dir ../shared/realdata --output runs/recordings_study.md

About a minute on two cores for the 33 real clips (it decodes each file's sound once).
"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repo root, for `import voiceface`

from voiceface import REPO_ROOT
from voiceface.cli import configure, run_main

# --- settings (each can be given on the command line: RAW_DIR as --raw-dir) ---------------------
RAW_DIR = REPO_ROOT / "data/raw"               # videos or sound files, one recording each
OUTPUT = REPO_ROOT / "runs/recordings_study.md"   # the tables
EXCERPT_START_S = 2.0           # where each excerpt begins in its clip
EXCERPT_S = 5.0                 # how long it is
FIXED_FLOOR_DB = -80.0          # the floor the search had before 2026-12-07, for comparison
# --- end of settings ---------------------------------------------------------------------------


def main(argv=None) -> int:
    configure(globals(), argv)
    import numpy as np
    from voiceface import degrade, recordings
    from voiceface.audio import compute_features, load_audio
    from voiceface.cli import AUDIO_EXTENSIONS, VIDEO_EXTENSIONS
    from voiceface.constants import SAMPLE_RATE
    from voiceface.errors import InputError
    from voiceface.formats import atomic_path

    if not Path(RAW_DIR).is_dir():
        print(f"error: {RAW_DIR}: no such folder; give a folder of videos or sound files with --raw-dir", file=sys.stderr)
        return 1
    files = sorted(f for f in Path(RAW_DIR).iterdir() if f.suffix.lower() in VIDEO_EXTENSIONS + AUDIO_EXTENSIONS)
    audio = {}
    for f in files:
        try:
            audio[f.stem] = load_audio(f)[1]
        except InputError as error:
            print(f"error: {error}", file=sys.stderr)
    if len(audio) < 2:
        print(f"error: {RAW_DIR}: fewer than two readable recordings; give a folder of videos or sound files",
              file=sys.stderr)
        return 1
    names = sorted(audio)
    mels = {n: compute_features(audio[n]).mel for n in names}
    start, length = int(EXCERPT_START_S * SAMPLE_RATE), int(EXCERPT_S * SAMPLE_RATE)
    excerpts = []                                   # (clip, condition, log-mel)
    for n in names:
        if len(audio[n]) < start + length + 2 * SAMPLE_RATE:
            continue
        piece = audio[n][start:start + length]
        others = [audio[o] for o in names if o != n]
        for condition, change in degrade.conditions(float(np.mean(piece.astype(np.float64) ** 2)), others).items():
            excerpts.append((n, condition, compute_features(np.asarray(change(piece), np.float32)).mel))

    def found(result) -> bool:
        return result.r >= recordings.MIN_R and abs(result.offset_s - EXCERPT_START_S) <= 0.02

    counts: dict[str, list[int]] = {}
    unrelated, related, same = [], [], 0
    prepared = {n: recordings.prepare(mels[n]) for n in names}
    excerpt_votes: dict[str, list[int]] = {}          # votes of each excerpt the comparison finds
    for clip, condition, mel in excerpts:
        row = counts.setdefault(condition, [0, 0, 0])
        every: list = []
        as_built = recordings.shared_audio(mels[clip], mel)
        if found(as_built):
            marks = [recordings.landmarks(prepared[clip]), recordings.landmarks(recordings.prepare(mel))]
            votes = recordings.votes_of_landmarks(marks, 1, None).get((0, 1), 0)   # every vote, and the rule's verdict
            excerpt_votes.setdefault(condition, []).append((votes, (0, 1) in recordings.votes_of_landmarks(marks)))
        checked_all = recordings.shared_audio(mels[clip], mel, min_envelope_r=None, trace=every)
        row[0] += found(as_built)
        row[1] += found(recordings.shared_audio(mels[clip], mel, floor_db=FIXED_FLOOR_DB))
        row[2] += 1
        same += (as_built.r >= recordings.MIN_R) == (checked_all.r >= recordings.MIN_R) and \
            (checked_all.r < recordings.MIN_R or as_built == checked_all)
        related += every
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            every = []
            recordings.shared_audio(mels[a], mels[b], min_envelope_r=None, trace=every)
            unrelated.append(every)
    groups = recordings.recording_groups(mels)
    same_groups = groups == recordings.recording_groups(mels, min_envelope_r=None, min_votes=None)
    marks = [recordings.landmarks(prepared[n]) for n in names]          # each clip's, for both counts
    clip_votes = recordings.votes_of_landmarks(marks, 1, None)
    nominated = recordings.votes_of_landmarks(marks)
    shared_pairs = {frozenset((a, b)) for members, _ in groups for a in members for b in members if a != b}
    flat = [c for pair_list in unrelated for c in pair_list] + related
    reaching = [c for c in flat if c[2] >= recordings.MIN_R]
    under = [c for c in flat if c[1] < recordings.MIN_ENVELOPE_R]
    pure = [c for (a, b), cands in zip([(a, b) for i, a in enumerate(names) for b in names[i + 1:]], unrelated)
            if frozenset((a, b)) not in shared_pairs for c in cands]

    lines = [f"# The search for shared recordings on {RAW_DIR}", "",
             f"{len(names)} recordings; {len(excerpts)} excerpts of {EXCERPT_S:g} s from {EXCERPT_START_S:g} s into the "
             f"{len(excerpts) // max(len(counts), 1)} clips long enough, each changed as voiceface/degrade.py changes sound.",
             "", "## 1. Excerpts found at their true offset (spectrogram r >= "
             f"{recordings.MIN_R}, offset within 20 ms)", "",
             f"| the excerpt | floored {recordings.FLOOR_BELOW_LEVEL_DB:g} dB under each clip's level (as built) "
             f"| fixed {FIXED_FLOOR_DB:g} dB floor |", "|---|---|---|"]
    lines += [f"| {c} | {a} of {t} | {b} of {t} |" for c, (a, b, t) in counts.items()]
    lines += ["", f"## 2. The envelope check (a candidate is checked on the spectrogram when its envelopes' r "
              f"reaches {recordings.MIN_ENVELOPE_R})", "",
              f"- candidates of every pair of clips and of every excerpt against its clip: {len(flat)}",
              f"- of them reaching spectrogram r {recordings.MIN_R}: {len(reaching)}, their lowest envelope r "
              + (f"{min(c[1] for c in reaching):.3f}" if reaching else "-"),
              f"- under envelope r {recordings.MIN_ENVELOPE_R}: {len(under)}, their highest spectrogram r "
              + (f"{max(c[2] for c in under):.3f}" if under else "-"),
              f"- candidates of pairs that share no recording ({len(pure)}) left unchecked: "
              f"{np.mean([c[1] < recordings.MIN_ENVELOPE_R for c in pure]):.0%}" if pure else "- no unrelated pairs",
              f"- the same verdict and evidence as checking every candidate: {same} of {len(excerpts)} excerpts; "
              f"the same groups of the {len(names)} recordings: {'yes' if same_groups else 'NO'}",
              f"- groups found: {'; '.join(', '.join(m) for m, _ in groups) or 'none'}"]
    unrelated_votes = [v for (i, j), v in clip_votes.items() if frozenset((names[i], names[j])) not in shared_pairs]
    pairs = len(names) * (len(names) - 1) // 2
    lines += ["", f"## 3. The index of landmarks (a pair is compared when {recordings.MIN_VOTES} of its landmark keys "
              f"agree on an offset, and more than chance gives at {recordings.CHANCE_PAIRS:g})", "",
              "| the excerpt | found by the comparison | their votes, least (median) "
              "| nominated by the index |", "|---|---|---|---|"]
    for condition, (_, _, total) in counts.items():
        votes = [v for v, _ in excerpt_votes.get(condition, [])]
        lines.append(f"| {condition} | {len(votes)} of {total} | "
                     + (f"{min(votes)} ({int(np.median(votes))})" if votes else "-") + " | "
                     f"{sum(n for _, n in excerpt_votes.get(condition, []))} of {len(votes)} |")
    lines += ["", f"- pairs of the {len(names)} recordings nominated: "
              f"{len(nominated)} of {pairs} ({sum(v >= recordings.MIN_VOTES for v in clip_votes.values())} "
              f"with {recordings.MIN_VOTES} votes or more); the most votes of a pair "
              f"that shares no recording: {max(unrelated_votes, default=0)}; of the pairs that share one: "
              + (", ".join(str(clip_votes.get((names.index(a), names.index(b)), 0))
                           for members, _ in groups for a, b in zip(members, members[1:])) or "-"),
              f"- the same groups as comparing every pair: {'yes' if same_groups else 'NO'}"]
    text = "\n".join(lines) + "\n"
    Path(OUTPUT).parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(Path(OUTPUT)) as tmp:
        Path(tmp).write_text(text)
    print(text)
    print(f"wrote {OUTPUT}")
    return 0


if __name__ == "__main__":
    sys.exit(run_main(main))
