"""The console's forms read into the CLI's requests (pure): what a POST may ask for, checked here
before any call; the API server's schema and the operator validate the resource again."""

from __future__ import annotations

import re
from collections.abc import Mapping

from kubetrove.api.common import OBJECT_NAME
from kubetrove.cli.manifests import CreateRequest

NAME = re.compile(r"[a-z]([-a-z0-9]*[a-z0-9])?")  # a database's children are named after it
IDENTIFIER = re.compile(OBJECT_NAME)  # what every engine accepts as a database or user name
PRIVILEGES = ("read", "readWrite", "admin")


class FormError(ValueError):
    """A field the user must correct; the message names it."""


def name_field(fields: Mapping[str, str], key: str, label: str) -> str:
    """A DNS-label name (what a database's child objects can be named after)."""
    value = fields.get(key, "").strip()
    if not NAME.fullmatch(value) or len(value) > 40:
        raise FormError(f"{label}: {value!r} is not a name (lower-case letters, digits and -, at most 40)")
    return value


def create_request(fields: Mapping[str, str], namespace: str) -> CreateRequest:
    """The create form as the CLI's ``CreateRequest`` (the catalog check is ``commands.create``'s)."""
    name = name_field(fields, "name", "Name")
    engine, sep, version = fields.get("offering", "").partition("/")
    if not sep or not engine or not version:
        raise FormError("Engine and version: choose one from the list")
    replicas_text = fields.get("replicas", "").strip() or "1"
    if not replicas_text.isdigit() or not 1 <= int(replicas_text) <= 15:
        raise FormError(f"Members: {replicas_text!r} is not a number from 1 to 15")
    replicas = int(replicas_text)
    database, user = fields.get("database", "").strip(), fields.get("user", "").strip()
    privilege = fields.get("privilege", "readWrite")
    if privilege not in PRIVILEGES:
        raise FormError(f"Privilege: {privilege!r} is not one of {', '.join(PRIVILEGES)}")
    for value, label in ((database, "Database"), (user, "User")):
        if value and not IDENTIFIER.match(value):
            raise FormError(f"{label}: {value!r} is not a name (letters, digits and _, at most 48)")
    return CreateRequest(
        name=name,
        namespace=namespace,
        engine=engine,
        version=version,
        replicas=replicas if replicas > 1 else None,
        storage=fields.get("storage", "").strip() or None,
        databases=(database,) if database else (),
        users=((user, database, privilege),) if user else (),
    )
