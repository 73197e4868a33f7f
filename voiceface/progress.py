"""What a run prints while it works, defined once: progress bars on a terminal, plain lines when
the output goes to a file (a log of `python run_pipeline.py > run.log 2>&1` would otherwise be
hundreds of carriage-return updates per bar), and silence from the native libraries' start-up
chatter that no Python setting reaches.
"""
from __future__ import annotations

import os
import sys
from contextlib import contextmanager


def on_terminal(stream=None) -> bool:
    """True when `stream` (default: standard error, where bars go) is an interactive terminal."""
    stream = sys.stderr if stream is None else stream
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


class _Quiet:
    """A progress bar that draws nothing: for output that is not a terminal. It counts, so
    callers may read `n`, and accepts every call a tqdm bar does that this project uses."""

    def __init__(self, iterable=None, total=None, **_):
        self.iterable, self.total, self.n = iterable, total, 0

    def __iter__(self):
        for item in self.iterable:
            yield item
            self.n += 1

    def update(self, n: int = 1) -> None:
        self.n += n

    def set_postfix(self, *_, **__) -> None:
        pass

    def close(self) -> None:
        pass

    def __enter__(self):
        return self

    def __exit__(self, *_):
        self.close()


def progress_bar(iterable=None, enabled: bool = True, **options):
    """A tqdm bar when standard error is a terminal and `enabled`; otherwise a silent stand-in
    (the caller prints one plain line per file or epoch itself, with `say`)."""
    if enabled and on_terminal():
        from tqdm import tqdm
        return tqdm(iterable, **options)
    return _Quiet(iterable, **options)


def say(line: str, file=None) -> None:
    """Print a line without breaking a bar that may be drawn on the terminal."""
    file = sys.stdout if file is None else file
    if on_terminal():
        from tqdm import tqdm
        tqdm.write(line, file=file)
    else:
        print(line, file=file, flush=True)


@contextmanager
def native_stderr_silenced():
    """Point file descriptor 2 at /dev/null for the duration: C++ libraries (MediaPipe's glog and
    absl, TensorFlow Lite) write their start-up warnings straight to it, from their own threads,
    before any Python logging setting applies. Python's own sys.stderr is flushed first and
    restored after, so an exception raised inside is still reported once the block is left."""
    sys.stderr.flush()
    try:
        saved = os.dup(2)
    except OSError:                     # no descriptor 2 (a detached process): nothing to silence
        yield
        return
    null = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(null, 2)
        yield
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)
        os.close(saved)
        os.close(null)
