"""Kubernetes resource quantities (``10Gi``, ``500M``, ``1.5e3``, ``250m``) parsed exactly.

The grammar is apimachinery's ``resource.Quantity``:
``[+-]<digits>[.<digits>]<suffix>``, suffix one of the binary SI (Ki Mi Gi Ti Pi Ei), the decimal SI
(n u m "" k M G T P E) or a decimal exponent (``e3``, ``E-2``).
https://kubernetes.io/docs/reference/kubernetes-api/common-definitions/quantity/
The value is a ``Fraction`` so comparisons are exact (``1Gi`` vs ``1073741824``, ``0.5Gi`` vs
``512Mi``); kept here, small and pure, because the only Python implementations live in the
Kubernetes client, which datastores may not import.
"""

from __future__ import annotations

import re
from fractions import Fraction

BINARY = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60}
DECIMAL = {
    "n": Fraction(1, 10**9),
    "u": Fraction(1, 10**6),
    "m": Fraction(1, 10**3),
    "": Fraction(1),
    "k": Fraction(10**3),
    "M": Fraction(10**6),
    "G": Fraction(10**9),
    "T": Fraction(10**12),
    "P": Fraction(10**15),
    "E": Fraction(10**18),
}

_QUANTITY = re.compile(
    r"(?P<number>[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+))"
    r"(?:(?P<binary>Ki|Mi|Gi|Ti|Pi|Ei)|[eE](?P<exponent>[+-]?[0-9]+)|(?P<decimal>[numkMGTPE]?))",
    re.ASCII,
)


def parse_quantity(text: str) -> Fraction:
    """The exact value of ``text``; ValueError when it is not a Kubernetes quantity."""
    m = _QUANTITY.fullmatch(text)
    if m is None:
        raise ValueError(f"{text!r} is not a Kubernetes quantity")
    number = Fraction(m.group("number"))
    if m.group("binary") is not None:
        return number * BINARY[m.group("binary")]
    if m.group("exponent") is not None:
        exponent = int(m.group("exponent"))
        if abs(exponent) > 1000:  # apimachinery refuses absurd exponents too; keeps Fractions small
            raise ValueError(f"{text!r}: exponent out of range")
        return number * Fraction(10) ** exponent
    return number * DECIMAL[m.group("decimal")]
