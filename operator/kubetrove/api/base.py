"""Model base class: camelCase on the wire, snake_case in Python, unknown fields refused."""

from __future__ import annotations

from typing import Any, Self

from pydantic import BaseModel, ConfigDict
from pydantic.alias_generators import to_camel


class ApiModel(BaseModel):
    """Base of every API model.

    - ``alias_generator=to_camel``: the wire (and the CRD) use Kubernetes' camelCase field names.
    - ``extra="forbid"``: a misspelt field is an error, not a silent no-op (the CRD schema also prunes).
    - ``frozen``: parsed specs are values; reconcile code derives, it never mutates.
    """

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="forbid",
        frozen=True,
        use_enum_values=False,
    )

    @classmethod
    def from_wire(cls, data: Any) -> Self:
        """Parse a camelCase mapping (a CR's spec or status as the API server returns it)."""
        return cls.model_validate(data)

    def to_wire(self) -> dict[str, Any]:
        """Serialise to camelCase JSON-compatible data, leaving out unset optional fields."""
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)
