"""Identifier validation: the first fence against hostile names (drivers still quote: the second fence).

A name must pass the PORTABLE rule and then the rule of the engine it is meant for. The portable rule is
deliberately narrower than any engine's: ASCII letters, digits, ``_`` and ``-``, starting with a letter or
``_``. So no quote, backtick, semicolon, backslash, space, ``%``, ``$``, ``.``, ``/`` or NUL can ever reach
an engine, and every accepted name quotes trivially in every dialect. Engine rules add the length limits
and the characters one engine refuses:

- MySQL / MariaDB: database names max 64 characters; user names max 32 (MySQL 8) / 80 (MariaDB)
  (https://dev.mysql.com/doc/refman/8.4/en/identifier-length.html,
  https://mariadb.com/kb/en/identifier-names/). ``_`` is a wildcard in GRANT; the MySQL driver escapes it.
- PostgreSQL: 63 bytes (NAMEDATALEN - 1); longer names are silently truncated by the server, which would
  make two different names collide, so they are refused here
  (https://www.postgresql.org/docs/15/sql-syntax-lexical.html#SQL-SYNTAX-IDENTIFIERS).
- MongoDB: database names < 64 bytes and none of ``/\\. "$*<>:|?`` (already outside the portable set)
  (https://www.mongodb.com/docs/manual/reference/limits/#naming-restrictions).
- Cassandra: keyspaces and roles ``[A-Za-z0-9_]{1,48}``: no ``-`` (https://cassandra.apache.org/doc/5.0/cassandra/developing/cql/ddl.html).

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

    max_database: int
    max_user: int
    allow_hyphen: bool = True
    reserved_databases: frozenset[str] = frozenset()
    reserved_users: frozenset[str] = frozenset()


_MYSQL_DBS = frozenset({"mysql", "information_schema", "performance_schema", "sys"})
RULES: dict[str, Rule] = {
    "mysql": Rule(64, 32, reserved_databases=_MYSQL_DBS, reserved_users=frozenset({"root", "mysql"})),
    "mariadb": Rule(
        64, 80, reserved_databases=_MYSQL_DBS, reserved_users=frozenset({"root", "mysql", "mariadb"})
    ),
    "postgresql": Rule(
        63,
        63,
        reserved_databases=frozenset({"postgres", "template0", "template1"}),
        reserved_users=frozenset({"postgres", "public"}),
    ),
    "mongodb": Rule(63, 63, reserved_databases=frozenset({"admin", "local", "config"})),
    "cassandra": Rule(
        48,
        48,
        allow_hyphen=False,
        reserved_databases=frozenset({"system"}),
        reserved_users=frozenset({"cassandra"}),
    ),
}


def validate(engine: str, kind: Kind, name: str) -> str:
    """Return ``name`` unchanged if ``engine`` accepts it as a ``kind``; raise InvalidName otherwise."""
    rule = RULES.get(engine)
    if rule is None:
        raise InvalidName(f"no identifier rule for engine {engine!r}")
    if not PORTABLE.fullmatch(name):
        raise InvalidName(f"{kind} name must match {PORTABLE.pattern} (ASCII letters, digits, _ and -)")
    limit = rule.max_database if kind is Kind.DATABASE else rule.max_user
    if len(name) > limit:
        raise InvalidName(f"{kind} name longer than {limit} characters ({engine})")
    if not rule.allow_hyphen and "-" in name:
        raise InvalidName(f"{kind} name may not contain '-' ({engine})")
    reserved = rule.reserved_databases if kind is Kind.DATABASE else rule.reserved_users
    lowered = name.lower()
    if lowered in reserved or (engine == "cassandra" and lowered.startswith("system")):
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
