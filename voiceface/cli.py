"""What every stage script shares on the command line: settings, inputs, and batch runs.

A stage script keeps its tunable constants at the top between two rulers:

    # --- settings ---------------------------------------------------------------------------
    OUTPUT_DIR = REPO_ROOT / "data/processed"   # one folder per clip goes here
    WORKERS = 1                                 # processes, one file each
    # --- end of settings --------------------------------------------------------------------

and calls `configure(globals())`: each constant becomes an option with the same name
(`--output-dir`, `--workers`), typed by its default value, its help taken from its comment. What
the command line gives replaces the constant, so the rest of the script reads the constants.

A comment that begins "with --other:" (or "with --one / --other:", or "with --benchmark
speaker-dependent:") names the settings this one works with: given on the command line while none
of those is set, it is refused in one line (`--reference` without `--preview` was silently ignored).
"""
from __future__ import annotations

import argparse
import contextlib
import glob
import multiprocessing
import os
import re
import signal
import subprocess
import sys
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable

from .errors import InputError

SETTINGS_START = re.compile(r"^# --- settings\b")
SETTINGS_END = re.compile(r"^# --- end of settings\b")
SETTING_LINE = re.compile(r"^([A-Z][A-Z0-9_]*)\s*(?::[^=]+)?=\s*(.*?)(?:\s+#\s*(.*))?$")
CONTINUATION_LINE = re.compile(r"^#\s{2,}(\S.*)$")   # a setting's comment carried on under it

# the video containers every stage reads, each with the FFmpeg muxer that writes it again (split_recording.py's parts)
VIDEO_MUXERS = {".mp4": "mp4", ".m4v": "mp4", ".mov": "mov", ".mkv": "matroska", ".webm": "webm", ".avi": "avi",
                ".mpg": "mpeg", ".mpeg": "mpeg", ".ts": "mpegts", ".mts": "mpegts", ".m2ts": "mpegts",
                ".3gp": "3gp", ".flv": "flv"}
VIDEO_EXTENSIONS = tuple(VIDEO_MUXERS)
AUDIO_EXTENSIONS = (".wav", ".flac", ".mp3", ".ogg", ".opus", ".m4a", ".aac", ".aif", ".aiff", ".caf", ".mka")


# --- Ctrl-C ---------------------------------------------------------------------------------------
# A script stopped with Ctrl-C says so in one line and exits with a shell's code for it, 130, instead of
# a traceback; what it finished is kept and nothing is left half-written (files are written to a
# temporary name and renamed, and a file stopped mid-way removes its temporary file on the way out).

STOPPED_EXIT = 130               # 128 + SIGINT, what a shell reports for a command stopped by Ctrl-C
STOPPED = "stopped (Ctrl-C); what it finished is kept, nothing is left half-written"


class StopFlag:
    """A flag a signal handler may set: a plain attribute, no lock. threading.Event.set takes a lock,
    and a handler runs in the thread it interrupts, so a second Ctrl-C arriving while the first
    handler held that lock waited for it forever (a worker of stage 1.1 hung at 'stopped', both
    handlers on its stack: the terminal's Ctrl-C and the one the main process passes on)."""

    def __init__(self):
        self._set = False

    def set(self) -> None:
        self._set = True

    def is_set(self) -> bool:
        return self._set


# Set by the Ctrl-C handler. A KeyboardInterrupt raised while native code runs (MediaPipe's graph)
# can be lost there (a run interrupted 4 s in once finished and exited 0); long loops check this too.
STOP_ASKED = StopFlag()
_QUIET_ENV = "VOICEFACE_STOP_SAID_BY_PARENT"   # a script run by another one (run_child) leaves the line to it
_in_task = True                  # in a batch worker: False while it waits for its next file


_deferred = 0                    # inside calls into a library that a KeyboardInterrupt must not cut (MediaPipe)


@contextlib.contextmanager
def ctrl_c_deferred():
    """Ctrl-C inside this block only sets STOP_ASKED; the caller checks it after the block. For calls
    into MediaPipe's Python layer, which runs each C call on a dispatcher thread and builds objects
    whose __del__ fails when cut half-way: a KeyboardInterrupt raised there printed 'Exception
    ignored in Image.__del__' tracebacks under a stopped run's one line."""
    global _deferred
    _deferred += 1
    try:
        yield
    finally:
        _deferred -= 1


def _on_ctrl_c(signum, frame):
    global _in_task
    STOP_ASKED.set()
    if _in_task:
        if multiprocessing.parent_process() is not None:
            _in_task = False       # a worker stops its file once: a second Ctrl-C must not cut its cleanup short
        if not _deferred:
            raise KeyboardInterrupt


def run_main(main: Callable[[], int], going_on: str = "") -> int:
    """A script's entry: `sys.exit(run_main(main))`. Ctrl-C gives one line, `STOPPED` and
    `going_on` (how to carry on, where that needs saying), and exit code 130; any file name prints."""
    # not where Ctrl-C is ignored: a command started in the background (`cmd &` in a script, nohup) keeps
    # ignoring it, as Python itself and the shells do
    if signal.getsignal(signal.SIGINT) is signal.default_int_handler:
        signal.signal(signal.SIGINT, _on_ctrl_c)
    for stream in (sys.stdout, sys.stderr):
        # a file name that is not UTF-8 (an old archive's Latin-1) is printed as the bytes it has; under a
        # UTF-8 locale other than C's, printing it raised UnicodeEncodeError and ended the run
        if hasattr(stream, "reconfigure"):
            stream.reconfigure(errors="surrogateescape")
    try:
        return main()
    except KeyboardInterrupt:
        return say_stopped(going_on)


def say_stopped(going_on: str = "", what: str = STOPPED) -> int:
    """Print the line of a stop by Ctrl-C (unless a parent script says it) and return its exit code."""
    if not os.environ.get(_QUIET_ENV):
        print(f"\n{what}{'; ' + going_on if going_on else ''}", file=sys.stderr, flush=True)
    return STOPPED_EXIT


def run_child(command: list, **options) -> subprocess.CompletedProcess:
    """Run another script and wait for it, leaving Ctrl-C to it: the terminal sends Ctrl-C to both,
    and a parent that stopped at once (subprocess.run then kills its child) would cut the child off
    before it removed its temporary files. Raises KeyboardInterrupt when a stop came while the child
    ran (the child stopped too, or, when the stop was sent to this process alone, has finished), so
    the caller stops and says the one line; the child keeps quiet."""
    previous = signal.getsignal(signal.SIGINT)
    if previous is not signal.SIG_IGN:          # a handler, not SIG_IGN: a new program starts with the default
        signal.signal(signal.SIGINT, lambda *_: STOP_ASKED.set())
    try:
        result = subprocess.run(command, env={**os.environ, _QUIET_ENV: "1", **options.pop("env", {})}, **options)
    finally:
        signal.signal(signal.SIGINT, previous)
    if STOP_ASKED.is_set() or result.returncode in (STOPPED_EXIT, -signal.SIGINT):
        raise KeyboardInterrupt
    return result


def usable_cores() -> int:
    """The CPU cores this process may run on (a container's or taskset's share, where the system says)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


@dataclass
class Child:
    """One command for run_children: `header` is printed when it starts, `label` before each line it
    writes when several run at once."""
    label: str
    header: str
    command: list


def run_children(children: list[Child], at_once: int, env: dict | None = None) -> list[int | None]:
    """Run the commands, at most `at_once` at a time, in order; return their exit statuses (None for one
    never started, or stopped because another failed). One at a time, each runs as run_child runs it
    (its output straight to ours, its progress bar on a terminal). Several at once, each child's lines
    (stdout and stderr as one stream, unbuffered) are printed as they come, each after `[label] `, so
    that lines side by side say whose they are. Nothing more is started after a failure or a stop: a
    failure stops the running ones (SIGINT, as Ctrl-C would: a training keeps its last finished epoch
    and --resume goes on; SIGTERM where this was started ignoring Ctrl-C, as its children then are), and
    Ctrl-C is left to the children as run_child leaves it — the terminal sends it to all of them, this
    waits for them to finish stopping, then raises KeyboardInterrupt."""
    import selectors
    codes: list[int | None] = [None] * len(children)
    stopped = (STOPPED_EXIT, -signal.SIGINT)
    if at_once <= 1:
        for i, child in enumerate(children):
            print(child.header, flush=True)
            codes[i] = run_child(child.command, env=env or {}).returncode
            if codes[i] != 0:
                break
        return codes
    previous = signal.getsignal(signal.SIGINT)
    if previous is not signal.SIG_IGN:
        signal.signal(signal.SIGINT, lambda *_: STOP_ASKED.set())
    selector, running, waiting, failed = selectors.DefaultSelector(), {}, list(range(len(children))), False
    cut_short: list[int] = []

    def say(i: int, text: bytes) -> None:
        for line in text.decode(errors="replace").splitlines():
            print(f"[{children[i].label}] {line}", flush=True)

    try:
        while running or waiting and not failed and not STOP_ASKED.is_set():
            while waiting and len(running) < at_once and not failed and not STOP_ASKED.is_set():
                i = waiting.pop(0)
                print(children[i].header, flush=True)
                running[i] = subprocess.Popen(children[i].command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                              env={**os.environ, _QUIET_ENV: "1", "PYTHONUNBUFFERED": "1", **(env or {})})
                selector.register(running[i].stdout, selectors.EVENT_READ, (i, bytearray()))
            for key, _ in selector.select(timeout=0.5):
                i, pending = key.data
                if chunk := os.read(key.fd, 1 << 16):
                    pending += chunk
                    if (end := pending.rfind(b"\n")) >= 0:       # whole lines only: a line cut in two reads as two
                        say(i, bytes(pending[:end + 1]))
                        del pending[:end + 1]
                    continue
                selector.unregister(key.fileobj)       # the child closed its output: it is ending
                key.fileobj.close()
                say(i, bytes(pending))
                codes[i] = running.pop(i).wait()
                if codes[i] not in (0, *stopped) and not failed:
                    failed = True
                    for k, other in running.items():
                        # started ignoring Ctrl-C as this was (`cmd &` in a script), a child would ignore SIGINT
                        other.send_signal(signal.SIGTERM if previous is signal.SIG_IGN else signal.SIGINT)
                        cut_short.append(k)
    finally:
        signal.signal(signal.SIGINT, previous)
        for child in running.values():          # only on an error of this loop's own: none is left behind
            child.kill()
            child.wait()
        selector.close()
    if not failed and (STOP_ASKED.is_set() or any(code in stopped for code in codes)):
        raise KeyboardInterrupt
    for i in cut_short:             # stopped because another failed: not finished, not failed
        if codes[i] != 0:
            codes[i] = None
    return codes


def read_settings(source_file: str | Path) -> list[tuple[str, str]]:
    """(name, help) of each constant between the settings rulers of a script, in order.

    A setting's help is its comment, with the indented comment lines right under it joined on."""
    settings, inside, continues = [], False, False
    for line in Path(source_file).read_text().splitlines():
        if SETTINGS_START.match(line):
            inside = True
        elif SETTINGS_END.match(line):
            break
        elif inside and (match := SETTING_LINE.match(line)):
            settings.append((match.group(1), (match.group(3) or "").strip()))
            continues = True
        elif inside and continues and (match := CONTINUATION_LINE.match(line)):
            name, text = settings[-1]
            settings[-1] = (name, f"{text} {match.group(1).strip()}".strip())
        else:
            continues = False
    return settings


WORKS_WITH = re.compile(r"^with (--[a-z0-9-]+(?: / --[a-z0-9-]+)*)(?: [a-z-]+)?:")   # "with --stream / --mic: ..."


def _option_name(name: str) -> str:
    return "--" + name.lower().replace("_", "-")


def _setting_name(option: str) -> str:
    return option[2:].upper().replace("-", "_")


def _given_as(option: str, value) -> str:
    """How an option was written on the command line, from its parsed value (for messages)."""
    if value is False:
        return "--no-" + option[2:]
    if value in ("", None) or isinstance(value, (list, tuple)):
        return f"{option} {' '.join(map(str, value or ())) or repr('')}"
    return f"{option} {value:g}" if isinstance(value, float) else f"{option} {value}"


def configure(namespace: dict, argv: list[str] | None = None, positional: str | None = None) -> dict:
    """Parse the command line into the script's settings constants, in place, and return them.

    namespace: the script's globals(). positional: the name of a list setting (INPUTS) filled
    by the positional arguments instead of an option."""
    settings = read_settings(namespace["__file__"])
    parser = argparse.ArgumentParser(description=namespace.get("__doc__"),
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    for name, help_text in settings:
        default = namespace[name]
        kind = type(default)
        shown = f"{help_text} (default: {default})".replace("%", "%%")   # argparse formats help with %
        if name == positional:
            element = type(default[0]) if default else str
            parser.add_argument(name, nargs="*", type=element, default=default, help=shown)
        elif kind is bool:
            parser.add_argument(_option_name(name), dest=name, action=argparse.BooleanOptionalAction,
                                default=default, help=shown)
        elif kind in (list, tuple):
            element = type(default[0]) if default else str
            parser.add_argument(_option_name(name), dest=name, nargs="*", type=element, default=default,
                                help=shown)
        elif default is None:
            parser.add_argument(_option_name(name), dest=name, type=str, default=None, help=shown)
        else:
            # Path, int, float, str: the default's own type checks the value (`--workers two` fails)
            parser.add_argument(_option_name(name), dest=name, type=Path if isinstance(default, Path) else kind,
                                default=default, help=shown)
    arguments = vars(parser.parse_args(argv))
    for action in parser._actions:              # parsed again with no defaults: which settings were given
        action.default = argparse.SUPPRESS
    given = set(vars(parser.parse_args(argv))) & set(arguments)
    for name, help_text in settings:
        partners = WORKS_WITH.match(help_text)
        if name in given and partners and not any(arguments.get(_setting_name(option))
                                                   for option in partners.group(1).split(" / ")):
            option = _option_name(name) if arguments[name] is not False else "--no-" + _option_name(name)[2:]
            # a partner given but off (--window-seconds 0, --no-stream) is named as given
            off = [_given_as(other, arguments[_setting_name(other)]) for other in partners.group(1).split(" / ")
                   if _setting_name(other) in given]
            parser.exit(2, f"error: {option} works only with {partners.group(1).replace(' / ', ' or ')}"
                           + (f" ({', '.join(off)} turns it off)" if off else "") + "\n")
    namespace.update(arguments)
    namespace["_GIVEN_SETTINGS"] = given
    return arguments


def given_settings(namespace: dict) -> set[str]:
    """The settings the command line gave (by name, as CHECKPOINT), not left at their defaults,
    after `configure(namespace)`."""
    return set(namespace.get("_GIVEN_SETTINGS", ()))


def settings_for_header(settings: dict) -> dict:
    """Settings as JSON-friendly values, for the header of what a stage writes."""
    def plain(value):
        if isinstance(value, Path):
            return str(value)
        if isinstance(value, (list, tuple)):
            return [plain(v) for v in value]
        return value
    return {name.lower(): plain(value) for name, value in settings.items()}


def bad_lookahead(values_ms: Iterable[float]) -> str | None:
    """The one-line refusal of a look-ahead below zero, or between the model's 10 ms frames (train.py
    rounded 5 ms to none and recorded it as 5), or None (train.py, evaluate.py --benchmark, the runner)."""
    from .constants import FRAME_RATE
    values = list(values_ms)
    given = f"--lookahead-ms {' '.join(f'{ms:g}' for ms in values)}"
    if any(ms < 0 for ms in values):
        return (f"{given}: a look-ahead cannot be negative (a causal model cannot put out a face before it hears its "
                "sound); give 0 (strictly causal) or more")
    frame_ms = 1000 / FRAME_RATE
    if any(abs(ms / frame_ms - round(ms / frame_ms)) > 1e-6 for ms in values):
        return f"{given}: give a multiple of {frame_ms:g} ms (the model's frame), e.g. 0 or 100"
    return None


def out_of_range(*checks: tuple) -> str | None:
    """The one-line refusal of the first numeric setting below its bound, or None. Each check is
    (option, value, bound, strict[, why]): strict asks for more than the bound, else the bound or more."""
    for option, value, bound, strict, *why in checks:
        if value > bound or (value == bound and not strict):
            continue
        least = f"more than {bound:g}" if strict else f"{bound:g} or more"
        return f"{option} {value:g}: give {least}" + (f" ({why[0]})" if why else "")
    return None


def over_limit(*checks: tuple) -> str | None:
    """The one-line refusal of the first numeric setting above its limit, or None. Each check is
    (option, value, limit, strict[, why]): strict asks for less than the limit, else the limit or less."""
    for option, value, limit, strict, *why in checks:
        if value < limit or (value == limit and not strict):
            continue
        most = f"less than {limit:g}" if strict else f"{limit:g} or less"
        return f"{option} {value:g}: give {most}" + (f" ({why[0]})" if why else "")
    return None


def expand_inputs(inputs: Iterable[str | Path], extensions: tuple[str, ...]) -> tuple[list[Path], list[str]]:
    """Files named, files in folders (recursively, by extension) and glob matches (of an input
    that is not itself a path), in a stable order without repeats. Returns (files, errors) where
    each error is one line for a path that matched nothing."""
    files, errors, seen = [], [], set()

    def add(path: Path):
        resolved = path.resolve()
        if resolved not in seen:
            seen.add(resolved)
            files.append(path)

    for item in inputs:
        text = str(item)
        # a path that exists is itself, even with a glob's characters in its name (yt-dlp names a
        # download "Title [video id].mp4", which as a pattern matched nothing)
        if any(ch in text for ch in "*?[") and not Path(text).exists():
            matches = sorted(Path(m) for m in glob.glob(text, recursive=True))
            matched = [m for m in matches if m.is_file()]
            if not matched:
                errors.append(f"{text}: no file matches this pattern; check the pattern and quote it")
            for match in matched:
                add(match)
        elif Path(text).is_dir():
            found = sorted(p for p in Path(text).rglob("*") if p.is_file() and p.suffix.lower() in extensions)
            if not found:
                errors.append(f"{text}: folder holds no files ending in {', '.join(extensions)}")
            for path in found:
                add(path)
        elif Path(text).is_file():
            add(Path(text))
        else:
            errors.append(f"{text}: no such file or folder; check the path")
    return files, errors


def check_unique_outputs(files: list[Path], output_of: Callable[[Path], Path],
                         why: str = "outputs are named by file name") -> tuple[list[Path], list[str]]:
    """Inputs whose outputs would land on one path (`output_of`) would overwrite each other within
    a run: the first is kept, each later one refused in one line (`why` may name the {target})."""
    kept, errors, owners = [], [], {}
    for path in files:
        target = output_of(path)
        if target in owners:
            errors.append(f"{path}: has the same name as {owners[target]}, and {why.format(target=target)}; rename one of them")
        else:
            owners[target] = path
            kept.append(path)
    return kept, errors


def check_unique_stems(files: list[Path]) -> tuple[list[Path], list[str]]:
    """Each clip's outputs go to a folder named after its file stem: two inputs with one stem
    would overwrite each other, so the second is refused (a dataset's folders repeat names: the line
    points to gather_clips.py)."""
    return check_unique_outputs(files, lambda path: path.stem,
                                "a clip is named by its file name (a dataset whose folders repeat names: gather it "
                                "first, 1_data_cleaning/gather_clips.py)")


@dataclass
class Outcome:
    path: Path
    status: str                # "done", "skipped", "failed" or "stopped" (Ctrl-C)
    message: str = ""


_BATCH_STOPPED = None             # in a batch worker: the command's stop, set by its main process


def _start_worker(stopped, command_ignores_ctrl_c: bool) -> None:
    """A batch worker stops the file it works on at Ctrl-C (the terminal sends it to every process
    of the command) and starts no other; waiting for a file it ignores it, so no traceback. It was
    started ignoring Ctrl-C (run_batch), so a Ctrl-C during its start-up (imports, about a second)
    neither prints a traceback nor kills it; the main process's `stopped` tells it of that one."""
    global _in_task, _BATCH_STOPPED
    _in_task, _BATCH_STOPPED = False, stopped
    if not command_ignores_ctrl_c:               # as the command it works for
        signal.signal(signal.SIGINT, _on_ctrl_c)


def _run_one(task: Callable[[Path], str], path: Path) -> Outcome:
    global _in_task
    if STOP_ASKED.is_set() or (_BATCH_STOPPED is not None and _BATCH_STOPPED.is_set()):
        return Outcome(path, "stopped")
    _in_task = True
    try:
        message = task(path)
        return Outcome(path, "skipped" if message.startswith("skipped") else "done", message)
    except InputError as error:
        return Outcome(path, "failed", str(error))
    except KeyboardInterrupt:
        return Outcome(path, "stopped")
    except Exception as error:     # an unforeseen failure of one file must not stop the others
        return Outcome(path, "failed", f"{path}: {type(error).__name__}: {error}")
    finally:
        _in_task = multiprocessing.parent_process() is None       # the main process stays stoppable


def run_batch(task: Callable[[Path], str], files: list[Path], errors: list[str], workers: int,
              description: str, cost: Callable[[Path], float] | None = None) -> int:
    """Run `task(path) -> message` on each file, `workers` processes at once, with a progress bar
    on a terminal and one plain line per file otherwise.

    task raises InputError for a bad input (its message is the one line shown). Errors found
    before the run (missing paths) count as failures. Prints a summary; returns the exit code:
    0 when every input succeeded or was skipped, 1 otherwise. With several workers, files are
    started longest first by `cost` (e.g. duration), so no worker is left alone with the longest
    file at the end: on clips of 25, 20, 20 and 6 s, name order lets two workers reach at best
    1.58x one worker, longest-first 1.78x."""
    from .progress import progress_bar, say

    for line in errors:
        say(f"error: {line}", file=sys.stderr)
    outcomes: list[Outcome] = []
    start = time.perf_counter()
    # on a terminal a bar; in a log file, the one line per file below is the progress
    with progress_bar(total=len(files), desc=description, unit="file", enabled=len(files) >= 2) as bar:
        def report(outcome: Outcome):
            outcomes.append(outcome)
            if outcome.status == "failed":
                say(f"error: {outcome.message}", file=sys.stderr)
            elif outcome.message:
                say(outcome.message)
            bar.update(1)

        if workers <= 1 or len(files) <= 1:
            for path in files:
                report(_run_one(task, path))
                if outcomes[-1].status == "stopped":
                    raise KeyboardInterrupt
        else:
            # spawn, not fork: MediaPipe and PyTorch hold threads that a fork would copy broken
            context = multiprocessing.get_context("spawn")
            ordered = sorted(files, key=cost, reverse=True) if cost else files
            # the workers start ignoring Ctrl-C (an ignored signal stays ignored across the exec of a
            # spawned process; a handler does not): at the terminal's Ctrl-C during their start-up, a
            # worker importing its modules printed a KeyboardInterrupt traceback and died, or, started
            # after this process's stop, went on to read a video. This process ignores it only while
            # it starts them (milliseconds), then tells them of a stop through `stopped`.
            stopped = context.Event()
            command_ignores = signal.getsignal(signal.SIGINT) is signal.SIG_IGN
            pool = ProcessPoolExecutor(max_workers=workers, mp_context=context, initializer=_start_worker,
                                       initargs=(stopped, command_ignores))
            try:
                previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
                try:
                    futures = [pool.submit(_run_one, task, path) for path in ordered]     # starts the workers
                finally:
                    signal.signal(signal.SIGINT, previous)
                for future in as_completed(futures):
                    report(future.result())
                    if outcomes[-1].status == "stopped":
                        raise KeyboardInterrupt
            except KeyboardInterrupt:
                # the files under way stop (and clean up) on Ctrl-C, passed on to the workers for a stop
                # sent to this process alone; the rest never start
                stopped.set()
                for process in list((getattr(pool, "_processes", None) or {}).values()):
                    if process.is_alive():
                        os.kill(process.pid, signal.SIGINT)
                pool.shutdown(wait=True, cancel_futures=True)
                raise
            finally:
                pool.shutdown(wait=True)
    counts = {s: sum(o.status == s for o in outcomes) for s in ("done", "skipped", "failed")}
    failed = counts["failed"] + len(errors)
    print(f"{description}: {counts['done']} done, {counts['skipped']} skipped (already there; --force "
          f"redoes them), {failed} failed, in {time.perf_counter() - start:.1f} s", file=sys.stderr)
    if failed:
        for line in errors + [o.message for o in outcomes if o.status == "failed"]:
            print(f"  failed: {line}", file=sys.stderr)
    return 1 if failed else 0
