"""Exceptions a user can cause. Each subclasses the builtin a Python user would catch.

The CLI catches ``LightMLError`` (and the builtins below) and prints one line, never a traceback.
"""


class LightMLError(Exception):
    """Base class of every error LightML raises on purpose."""


class InvalidInputError(LightMLError, ValueError):
    """A name, value, score list, step or path that cannot be stored."""


class NotFoundError(LightMLError, ValueError, LookupError):
    """A model, run, checkpoint or metric that does not exist.

    It is both a ``ValueError`` (LightML 1.2 raised ``ValueError`` for unknown models)
    and a ``LookupError`` (what the design asks for missing things).
    """


class AmbiguousNameError(LightMLError, ValueError):
    """A model name that exists in several runs, used where no run says which."""


class SchemaViolationError(LightMLError, ValueError):
    """A (family, metric) pair that the registry schema does not allow."""


class ConflictError(LightMLError, ValueError):
    """A write that would break a uniqueness rule (e.g. restoring over a live model)."""


class RegistryLockedError(LightMLError, TimeoutError):
    """Another process held the write lock for longer than the handle's timeout."""


class NotARegistryError(LightMLError, ValueError):
    """The file is not a SQLite database, or not a LightML registry of a version we can read."""


class HandleClosedError(LightMLError, RuntimeError):
    """A method was called on a handle after ``close()``."""


class NetworkFilesystemError(InvalidInputError):
    """A SQLite registry opened for writing on a network filesystem (NFS, SMB, Lustre, GPFS,
    BeeGFS, a FUSE network mount), where writers on several machines can corrupt it.
    ``LIGHTML_ALLOW_NETWORK_FS=1`` or ``allow_network_filesystem=True`` lets it through."""


class RegistryUnavailableError(LightMLError, ConnectionError):
    """The connection to a server's registry (PostgreSQL) was lost during a call: the call's
    transaction was not committed (or, lost during COMMIT, not confirmed); the next call
    connects again."""
