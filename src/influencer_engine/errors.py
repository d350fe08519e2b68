"""Errors meant for people: each says what is wrong, where, and how to fix it."""

from __future__ import annotations

__all__ = ["ConfigError", "ContractError", "EngineError", "InputError"]


class EngineError(Exception):
    """Base of every error the CLI reports as one line (no traceback unless --debug)."""

    def __init__(self, message: str, *, fix: str | None = None) -> None:
        self.message = message
        self.fix = fix
        super().__init__(self.one_line())

    def one_line(self) -> str:
        return f"{self.message} Fix: {self.fix}" if self.fix else self.message


class InputError(EngineError):
    """A file cannot be read at all (missing, unreadable, wrong format)."""


class ContractError(EngineError):
    """A file breaks a table contract as a whole (missing column, column of the wrong type)."""

    def __init__(self, message: str, *, file: str, column: str | None = None, fix: str) -> None:
        self.file = file
        self.column = column
        where = f"{file}" + (f", column '{column}'" if column else "")
        super().__init__(f"{where}: {message}.", fix=fix)


class ConfigError(EngineError):
    """A configuration file is malformed or holds unknown keys."""
