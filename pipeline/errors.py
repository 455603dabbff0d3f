"""The exception types that reach users as a single clear line."""

import signal

LONGEST = 160  # characters of one value (a path, a URL) shown in an error line


def shortened(line: str, longest: int = LONGEST) -> str:
    """``line`` with every whitespace-free run longer than ``longest`` cut in the middle
    (its start and its end identify a path): a 4,000-character output.dir is not echoed."""

    def cut(word: str) -> str:
        if len(word) <= longest:
            return word
        keep = (longest - 5) // 2
        return f"{word[:keep]}[...]{word[-keep:]}"

    return " ".join(cut(w) for w in line.split(" "))


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


class Interrupted(KeyboardInterrupt):
    """The run was stopped by a signal: Ctrl-C (SIGINT) or SIGTERM (e.g. preemption)."""

    def __init__(self, signum: int = signal.SIGINT, detail: str = "") -> None:
        super().__init__(signum, detail)
        self.signum = signum
        self.detail = detail

    @property
    def exit_code(self) -> int:
        """128 + the signal number, as a shell reports a process killed by it (130, 143)."""
        return 128 + self.signum

    def __str__(self) -> str:
        name = signal.Signals(self.signum).name
        return f"interrupted by {name}: " + (
            self.detail or "finished shards are kept; re-run the same command to resume"
        )
