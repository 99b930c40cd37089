"""Errors for humans. Each carries the exit code the CLI returns.

Exit codes (stable, scripts rely on them):
  0  success
  1  a verification or policy said no
  2  bad usage or bad input (reference, key, password, file)
  3  registry or network failure
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_VERIFY = 1
EXIT_USAGE = 2
EXIT_REGISTRY = 3


class VouchError(Exception):
    """Base error: the message is one line that says what is wrong and what to do."""

    exit_code = EXIT_USAGE


class InputError(VouchError):
    """Bad usage or bad input: exit 2."""

    exit_code = EXIT_USAGE


class ReferenceError_(InputError):
    """An image reference that does not parse."""


class KeyError_(InputError):
    """A key that cannot be loaded (wrong password, bad format)."""


class VerificationError(VouchError):
    """A signature, attestation or policy check failed: exit 1."""

    exit_code = EXIT_VERIFY


class RegistryError(VouchError):
    """The registry or the network failed: exit 3."""

    exit_code = EXIT_REGISTRY

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.retry_after: float | None = None  # the server's Retry-After, when it gave one

    @property
    def transient(self) -> bool:
        """A failure worth another try: no answer at all, 429 or a 5xx."""
        return self.status is None or self.status in (429, 500, 502, 503, 504)


class NotFoundError(RegistryError):
    """A manifest, tag or blob does not exist."""


class DigestMismatchError(RegistryError):
    """Content fetched does not match the digest it was asked for."""
