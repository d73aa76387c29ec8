"""Domain errors of geocluster.

Every error a user can cause derives from :class:`GeoclusterError`. The library
raises these; only the edges (``api/errors.py``, ``geocluster/cli``) turn them
into HTTP status codes or exit codes. Messages say what was expected and what
was received.
"""

from __future__ import annotations


class GeoclusterError(Exception):
    """Base class of every error geocluster raises on purpose."""


class InvalidInput(GeoclusterError, ValueError):
    """A parameter or an input value is not acceptable (HTTP 422)."""


class UnusableFile(InvalidInput):
    """A file as a whole cannot be ingested: empty, corrupt, unsafe (HTTP 400).

    Nothing is stored when this is raised.
    """


class UnsupportedFormat(UnusableFile):
    """The file's format is not one geocluster reads (HTTP 415)."""


class FileTooLarge(UnusableFile):
    """The file is over the configured size limit (HTTP 413)."""


class MissingColumns(UnusableFile):
    """Required columns are missing; the message names the columns found (HTTP 422)."""


class UnsafeArchive(UnusableFile):
    """A zip archive with path traversal or an absurd expansion ratio (HTTP 400)."""


class CRSError(InvalidInput):
    """A coordinate reference system is missing, unknown or unsuitable (HTTP 422)."""


class WrongKind(InvalidInput):
    """A dataset of one kind was given where another kind is needed (HTTP 422)."""


class NotFound(GeoclusterError, LookupError):
    """An id does not name anything in the workspace (HTTP 404)."""

    def __str__(self) -> str:  # LookupError would quote the message like a key
        return str(self.args[0]) if self.args else self.__class__.__name__


class DatasetNotFound(NotFound):
    """No dataset with this id (or version)."""


class RunNotFound(NotFound):
    """No analysis run with this id."""


class RasterNotFound(NotFound):
    """No registered raster with this id."""


class RegionNotFound(NotFound):
    """No region with this id in the boundaries."""


class JobNotFound(NotFound):
    """No background job with this id."""


class Conflict(GeoclusterError):
    """The request conflicts with the workspace state (HTTP 409)."""


class DisclosureError(GeoclusterError):
    """An output would disclose confidential microdata (HTTP 403)."""
