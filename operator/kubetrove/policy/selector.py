"""Namespace selection: metav1.LabelSelector semantics, as the API server applies them.

https://kubernetes.io/docs/concepts/overview/working-with-objects/labels/#resources-that-support-set-based-requirements
All of ``matchLabels`` and all of ``matchExpressions`` must hold (AND); an empty selector selects every
namespace. ``NotIn`` and ``DoesNotExist`` hold for a namespace without the key.
"""

from __future__ import annotations

from collections.abc import Mapping

from kubetrove.api.database_policy import NamespaceSelector, SelectorOperator, SelectorRequirement


def _holds(req: SelectorRequirement, labels: Mapping[str, str]) -> bool:
    match req.operator:
        case SelectorOperator.IN:
            return req.key in labels and labels[req.key] in req.values
        case SelectorOperator.NOT_IN:
            return req.key not in labels or labels[req.key] not in req.values
        case SelectorOperator.EXISTS:
            return req.key in labels
        case SelectorOperator.DOES_NOT_EXIST:
            return req.key not in labels


def selects(selector: NamespaceSelector, labels: Mapping[str, str]) -> bool:
    """True when a namespace with ``labels`` is selected."""
    return all(labels.get(k) == v for k, v in selector.match_labels.items()) and all(
        _holds(r, labels) for r in selector.match_expressions
    )
