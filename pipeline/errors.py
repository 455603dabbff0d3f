"""The exception types that reach users as a single clear line."""


class PipelineError(Exception):
    """A user-facing error: what went wrong, where (sample or config key), what to do."""


class SampleError(PipelineError):
    """Bad data in one sample; skippable with ``runtime.on_error=skip``."""

    def __init__(self, key: str, reason: str) -> None:
        super().__init__(key, reason)
        self.key = key
        self.reason = reason

    def __str__(self) -> str:
        return f"sample {self.key}: {self.reason}"
