"""Before stage 1.1, for a dataset laid out in folders: one flat folder of links with unique names.

Every stage names a clip by its file name, so two videos called 00001.mp4 in different folders would
be one clip, and the second is refused. Datasets are laid out so: LRS2 as <programme>/00001.mp4,
VoxCeleb2 as <speaker>/<video>/00001.mp4, MEAD as <speaker>/video/front/<emotion>/<level>/001.mp4.
This script links each video found under a folder into OUTPUT_DIR, named by its path below that
folder with "__" between the parts:

    python 1_data_cleaning/gather_clips.py vox/dev/mp4 --output-dir data/raw_vox --speaker-level 1
    python run_pipeline.py --raw-dir data/raw_vox --speaker-manifest data/raw_vox/speakers.csv

vox/dev/mp4/id00012/21Uxsk56VDQ/00001.mp4 becomes data/raw_vox/id00012__21Uxsk56VDQ__00001.mp4, a
symbolic link (--copy copies instead, for a file system without links). With --speaker-level N the
N-th folder below the one given names the speaker (VoxCeleb's and MEAD's first), and
<output-dir>/speakers.csv is written (rows for other clips already in it are kept): stage 1.3 then
holds out whole speakers and the benchmarks know who speaks. Links already there are kept; a video
whose name would be too long gets one line and the others are gathered.
"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repo root, for `import voiceface`

from voiceface import REPO_ROOT
from voiceface.cli import VIDEO_EXTENSIONS, configure, run_main

# --- settings (each can be given on the command line: OUTPUT_DIR as --output-dir) -------------
INPUTS = []                                    # folders of a dataset: each video below one is linked
OUTPUT_DIR = REPO_ROOT / "data/raw_gathered"   # the links (or copies) and speakers.csv go here
SPEAKER_LEVEL = 0                              # the folder N levels below the one given names the speaker
#                                                (1: its first subfolder); 0: no speaker manifest
COPY = False                                   # copy the videos instead of linking them
SEPARATOR = "__"                               # between the folders and the file name in a clip's name
# --- end of settings ---------------------------------------------------------------------------


def clip_name(video: Path, root: Path) -> str:
    """A video's clip name: its path below `root`, folders joined by SEPARATOR, without its ending."""
    return SEPARATOR.join(video.relative_to(root).with_suffix("").parts)


def inside(path: Path, folder: Path) -> bool:
    where, folder = path.parent.absolute(), folder.absolute()
    return where == folder or folder in where.parents


def main(argv=None) -> int:
    configure(globals(), argv, positional="INPUTS")
    import shutil

    from voiceface.cli import out_of_range
    from voiceface.dataset import speaker_of, update_speaker_manifest
    from voiceface.errors import InputError
    from voiceface.formats import check_name_fits, ensure_writable_folder
    if problem := out_of_range(("--speaker-level", SPEAKER_LEVEL, 0, False)):
        print(f"error: {problem}", file=sys.stderr)
        return 2
    if not INPUTS:
        print("error: give the dataset's folder(s): gather_clips.py FOLDER [FOLDER ...] --output-dir DIR", file=sys.stderr)
        return 2
    output_dir = Path(OUTPUT_DIR)
    try:
        ensure_writable_folder(output_dir)
    except InputError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    errors, rows, owners, made, kept = [], {}, {}, 0, 0
    for root in map(Path, INPUTS):
        if not root.is_dir():
            errors.append(f"{root}: not a folder; give the folder the dataset's videos are in")
            continue
        videos = sorted(p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in VIDEO_EXTENSIONS
                        and not inside(p, output_dir))        # links made before, when it lies in the dataset
        if not videos:
            errors.append(f"{root}: holds no files ending in {', '.join(VIDEO_EXTENSIONS)}")
        for video in videos:
            name = clip_name(video, root)
            target = output_dir / f"{name}{video.suffix}"
            folders = video.relative_to(root).parts[:-1]
            try:
                check_name_fits(target)
                if name in owners:
                    raise InputError(f"{video}: its clip name {name} is {owners[name]}'s too; rename one of them")
                if SPEAKER_LEVEL and len(folders) < SPEAKER_LEVEL:
                    raise InputError(f"{video}: lies {len(folders)} folder(s) below {root}, so no folder "
                                     f"{SPEAKER_LEVEL} levels down names its speaker; check --speaker-level")
            except InputError as error:
                errors.append(str(error))
                continue
            owners[name] = video
            if SPEAKER_LEVEL:
                rows[name] = folders[SPEAKER_LEVEL - 1]
            if target.exists() or target.is_symlink():
                if target.resolve() != video.resolve() and not (COPY and target.stat().st_size == video.stat().st_size):
                    errors.append(f"{target} exists and is not {video}; remove it or choose another --output-dir")
                    rows.pop(name, None)
                else:
                    kept += 1
                continue
            if COPY:
                shutil.copy2(video, target)
            else:
                target.symlink_to(video.resolve())
            made += 1
    unnamed = sorted({speaker for speaker in rows.values() if speaker_of(speaker) != speaker})
    if unnamed:
        print(f"note: the folders {', '.join(unnamed[:5])} do not read as people's names; each is taken as one "
              "speaker all the same", file=sys.stderr)
    if rows:
        manifest = output_dir / "speakers.csv"
        try:
            update_speaker_manifest(manifest, rows)
            print(f"speaker manifest: {manifest} ({len(rows)} clips, {len(set(rows.values()))} speakers)")
        except InputError as error:     # a manifest of the user's it cannot read: left as it is
            errors.append(str(error))
    for line in errors:
        print(f"error: {line}", file=sys.stderr)
    print(f"gathered into {output_dir}: {made} {'copied' if COPY else 'linked'}, {kept} already there, "
          f"{len(errors)} failed")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(run_main(main))
