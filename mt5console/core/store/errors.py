"""Errors of the store, each naming what is wrong so that the caller can say it plainly."""

from __future__ import annotations


class StoreError(Exception):
    """Base of every error the store raises on purpose."""


class SchemaVersionError(StoreError):
    """The database file was written by a newer (or unknown) version of mt5console."""


class InvalidRecordError(StoreError, ValueError):
    """A value handed to the store is not acceptable; nothing was written."""


class NaiveDatetimeError(InvalidRecordError):
    """A datetime without a timezone was about to be written; its meaning would be a guess."""


class RecordNotFoundError(StoreError, LookupError):
    """The record a change refers to does not exist."""


class RecordStateError(StoreError):
    """The change does not fit the record's state (closing a closed trade, finishing a job twice)."""
