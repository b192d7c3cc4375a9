"""The errors mnistkit raises on purpose, and the checks that raise a user's before any work starts."""

import dataclasses
import math


class OneLine:
    """An error a user can fix, shown in a notebook (Jupyter, papermill) as its one line, without the
    traceback: IPython shows what ``_render_traceback_`` returns in its place."""

    def _render_traceback_(self) -> list[str]:
        return [f"{type(self).__name__}: {self}"]


class ConfigError(OneLine, ValueError):
    """A parameter has a value that is not allowed; raised before any work starts."""

    def __init__(self, name: str, value, allowed: str):
        self.name, self.value, self.allowed = name, value, allowed
        super().__init__(f"parameter {name!r} = {value!r}: {allowed}")


class DataError(OneLine, RuntimeError):
    """An MNIST file is missing or damaged; the message names the file and the fix."""



def check_flag(name, value) -> None:
    """Raise ``ConfigError`` unless ``value`` is true or false."""
    if not isinstance(value, bool):
        raise ConfigError(name, value, "must be true or false")


def check_number(name, value, low=None, high=None, low_open=False, integer=False) -> None:
    """Raise ``ConfigError`` unless ``value`` is a finite number (an int if ``integer``) in range."""
    kind = int if integer else (int, float)
    ok = isinstance(value, kind) and not isinstance(value, bool) and math.isfinite(value)
    if ok and low is not None:
        ok = value > low if low_open else value >= low
    if ok and high is not None:
        ok = value <= high
    if not ok:
        what = "an integer" if integer else "a number"
        bound = "" if low is None else f" {'>' if low_open else '>='} {low}"
        bound += "" if high is None else f" and <= {high}"
        raise ConfigError(name, value, f"must be {what}{bound}")


def from_mapping(cls, values: dict, what: str):
    """``cls(**values)`` for a dataclass; a key that is not one of its fields raises ``ConfigError``."""
    names = [f.name for f in dataclasses.fields(cls)]
    for key in values:
        if key not in names:
            raise ConfigError(key, values[key], f"is not a {what}; known: {names}")
    return cls(**values)


class KernelError(RuntimeError):
    """The kernels this machine would compute with are not the pinned ones: training would not
    reproduce the stored runs (see ``mnistkit.gemm``)."""


class ReproducibilityError(RuntimeError):
    """Two trainings of one configuration gave different numbers: the seeds or the pins do not hold."""
