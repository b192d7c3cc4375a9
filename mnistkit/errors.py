"""The two kinds of error a user can cause, each with a message that says how to fix it."""


class ConfigError(ValueError):
    """A parameter has a value that is not allowed; raised before any work starts."""

    def __init__(self, name: str, value, allowed: str):
        self.name, self.value, self.allowed = name, value, allowed
        super().__init__(f"parameter {name!r} = {value!r}: {allowed}")


class DataError(RuntimeError):
    """An MNIST file is missing or damaged; the message names the file and the fix."""

