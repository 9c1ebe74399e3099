"""What a sandboxed run gives back: `SandboxResult`, and its one-line summary.

The supervisor fills it in once the run is over: exit status, captured output, the limit or
rule that stopped the program (`violation`, worded by `limits.diagnose`), collected
files, refused network calls and the isolation layers the run had; `summary()` is the one
line for feedback and the audit trail.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class SandboxResult:
    """How a sandboxed run ended and what it produced."""

    exit_code: int | None
    """Exit status, negative for a signal; None when the sandbox killed the program."""
    stdout: str
    """Captured standard output, possibly truncated."""
    stderr: str
    """Captured standard error, possibly truncated."""
    duration_s: float
    """Wall-clock seconds from start to end."""
    violation: str | None
    """Why a limit or isolation rule stopped the program, in words; None when none did."""
    files: dict[str, bytes]
    """Collected output files by relative path."""
    blocked: list[str] = field(default_factory=list)
    """Network calls the sandbox refused, e.g. `socket(AF_INET, SOCK_STREAM)`."""
    isolation: dict[str, str] = field(default_factory=dict)
    """The isolation layers of this run and their state."""

    @property
    def ok(self) -> bool:
        """Whether the program exited 0 and no limit stopped it."""
        return self.exit_code == 0 and self.violation is None

    def summary(self) -> str:
        """One line for feedback and the audit trail."""
        if self.violation:
            head = f"stopped: {self.violation}"
        elif self.exit_code is not None and self.exit_code < 0:
            head = f"killed by signal {-self.exit_code}"
        else:
            head = "ok" if self.ok else f"exit {self.exit_code}"
        line = f"{head} after {self.duration_s:.2f} s"
        errors = [s.strip() for s in self.stderr.splitlines() if s.strip()]
        if not self.ok and errors:
            line += f"; {errors[-1][:160]}"
        if self.files:
            line += f"; files: {', '.join(sorted(self.files))}"
        return line
