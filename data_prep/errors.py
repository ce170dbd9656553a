"""One exception family for everything a user can get wrong.

The CLI turns any ``KwsError`` into a single line on stderr and a non-zero exit, so every
message must name the file (or value) and the problem on its own.
"""

from __future__ import annotations


def first_line(exc: object) -> str:
    """The first line of an exception's message (or its type when it has none): library
    errors often carry a traceback-like tail that does not belong in a one-line error."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


class KwsError(Exception):
    """Base of every error the CLI reports as one line."""


class AudioError(KwsError):
    """An audio file that cannot be read as valid audio."""


class ConfigError(KwsError):
    """A configuration file or value that is invalid."""


class ConfigMismatch(ConfigError):
    """Two artefacts that must share a FeatureConfig do not."""


class DatasetError(KwsError):
    """A dataset folder that does not have the expected layout or content."""


class DownloadError(KwsError):
    """A download or archive that failed or cannot be trusted."""


class ModelError(KwsError):
    """A model file or directory that cannot be used."""
