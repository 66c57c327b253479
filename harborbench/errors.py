"""The one exception tree of harborbench, and the exit codes it maps to.

Every error a user can cause, or that ends a run in a known way, is a subclass of
:class:`HarborbenchError`. The command-line interface catches this base class once
(``harborbench.cli.main``), prints the message on one line and exits with the class's
``exit_code``. Anything else is a bug and keeps its traceback.

::

    HarborbenchError                 (exit 4 unless a subclass says otherwise)
    ├── UserInputError               exit 2  bad input: fix the file, key or option
    │   ├── ProfileError             exit 2  an unreadable or invalid workload profile
    │   ├── MockSettingsError        exit 2  invalid settings for the built-in mock server
    │   └── ResultFileError          exit 2  a missing, unreadable or too new result file
    ├── GateFailed                   exit 1  a gate, threshold or regression check failed
    ├── InconclusiveError            exit 3  too few samples, noise larger than the effect,
    │                                        environments not comparable
    ├── RunFailedError               exit 4  the run itself failed
    │   ├── TargetUnreachableError   exit 4  the target server could not be reached or started
    │   └── AllRequestsFailedError   exit 4  every request of the measurement failed
    └── Interrupted                  exit 130 stopped by the user (partial results are written)

The exit codes are the contract of SPEC section 2 and are listed in the README.
"""

from __future__ import annotations

from typing import ClassVar

EXIT_OK = 0
EXIT_GATE_FAILED = 1
EXIT_BAD_INPUT = 2
EXIT_INCONCLUSIVE = 3
EXIT_RUN_FAILED = 4
EXIT_INTERRUPTED = 130


class HarborbenchError(Exception):
    """Base of every error harborbench reports to a user without a traceback.

    Attributes:
        exit_code: the process exit code the CLI uses for this error (SPEC section 2).
        hint: optional second sentence telling the user what to do next.
    """

    exit_code: ClassVar[int] = EXIT_RUN_FAILED

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.message} {self.hint}" if self.hint else self.message


class UserInputError(HarborbenchError):
    """Bad input: an unknown option, an invalid value, a missing file (exit 2)."""

    exit_code = EXIT_BAD_INPUT


class ProfileError(UserInputError):
    """A workload profile that cannot be read or does not validate (exit 2).

    The message names the file, and where known the line and the key.
    """


class MockSettingsError(UserInputError):
    """Settings of the built-in mock server that do not validate (exit 2)."""


class ResultFileError(UserInputError):
    """A result file that is missing, unreadable or of a newer schema version (exit 2)."""


class GateFailed(HarborbenchError):
    """A gate, threshold or regression check failed (exit 1)."""

    exit_code = EXIT_GATE_FAILED


class InconclusiveError(HarborbenchError):
    """The data cannot decide: too few samples, too much noise, not comparable (exit 3)."""

    exit_code = EXIT_INCONCLUSIVE


class RunFailedError(HarborbenchError):
    """The run itself failed: internal error, target down, nothing succeeded (exit 4)."""

    exit_code = EXIT_RUN_FAILED


class TargetUnreachableError(RunFailedError):
    """The target server could not be reached, or the built-in mock would not start (exit 4)."""


class AllRequestsFailedError(RunFailedError):
    """Every request of the measurement window failed (exit 4)."""


class Interrupted(HarborbenchError):
    """The user stopped the run (Ctrl-C); partial results have been written (exit 130)."""

    exit_code = EXIT_INTERRUPTED
