"""Identifier validation: the first fence against hostile names (drivers still quote: the second fence).

A name must pass the PORTABLE rule and then the rule of the engine it is meant for. The portable rule is
deliberately narrower than any engine's: ASCII letters, digits, ``_`` and ``-``, starting with a letter or
``_``. So no quote, backtick, semicolon, backslash, space, ``%``, ``$``, ``.``, ``/`` or NUL can ever reach
an engine, and every accepted name quotes trivially in every dialect. Each engine declares its ``Rule``
in its bundle (``engines/<engine>/__init__.py``): the length limits, the characters it refuses and the
reserved names, with a link to the engine's manual.

System databases and accounts are RESERVED: the API can neither create, drop nor re-grant them.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass

PORTABLE = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*")
PARAMETER = re.compile(
    r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)?"
)  # "max_connections", "auto_explain.x"
HOST = re.compile(r"[A-Za-z0-9]([A-Za-z0-9.:-]{0,252}[A-Za-z0-9])?")  # DNS name, IPv4 or IPv6 literal


class Kind(enum.StrEnum):
    DATABASE = "database"
    USER = "user"


class InvalidName(ValueError):
    """The name breaks the portable or the engine's rule; the message says which."""


@dataclass(frozen=True)
class Rule:
    """One engine's identifier limits, on top of the portable rule."""

    engine: str  # named in the error messages
    max_database: int
    max_user: int
    allow_hyphen: bool = True
    reserved_databases: frozenset[str] = frozenset()
    reserved_users: frozenset[str] = frozenset()
    # Lower-case prefixes no name may start with (a whole namespace the engine keeps for itself).
    reserved_prefixes: tuple[str, ...] = ()


def validate(rule: Rule, kind: Kind, name: str) -> str:
    """Return ``name`` unchanged if ``rule``'s engine accepts it as a ``kind``; else raise InvalidName."""
    engine = rule.engine
    if not PORTABLE.fullmatch(name):
        raise InvalidName(f"{kind} name must match {PORTABLE.pattern} (ASCII letters, digits, _ and -)")
    limit = rule.max_database if kind is Kind.DATABASE else rule.max_user
    if len(name) > limit:
        raise InvalidName(f"{kind} name longer than {limit} characters ({engine})")
    if not rule.allow_hyphen and "-" in name:
        raise InvalidName(f"{kind} name may not contain '-' ({engine})")
    reserved = rule.reserved_databases if kind is Kind.DATABASE else rule.reserved_users
    lowered = name.lower()
    if lowered in reserved or lowered.startswith(rule.reserved_prefixes):
        raise InvalidName(f"{kind} name {name!r} is reserved ({engine})")
    return name


def validate_parameter(name: str) -> str:
    """Return a server parameter name if it is a plain (optionally dotted) identifier."""
    if not PARAMETER.fullmatch(name) or len(name) > 128:
        raise InvalidName(f"parameter name must match {PARAMETER.pattern}")
    return name


def validate_host(host: str) -> str:
    """Return a replication source host if it is a DNS name or an IP literal."""
    if not HOST.fullmatch(host):
        raise InvalidName("host must be a DNS name or an IP address")
    return host
