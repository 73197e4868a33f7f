"""The errors a stage reports as one line naming the file, the cause and what to do."""


class InputError(Exception):
    """A problem with one input file: reported in one line, the other inputs still processed."""


class FormatError(InputError):
    """A file written by another version or with other constants than this code expects."""
