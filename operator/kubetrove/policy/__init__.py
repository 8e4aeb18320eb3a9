"""DatabasePolicy decisions: PURE code (no I/O, no clock, no client), property- and unit-tested.

- ``selector``: does a policy's namespaceSelector select a namespace (metav1.LabelSelector semantics)?
- ``usage``: what one resource, and a whole namespace, counts against the quotas.
- ``decide``: may this create or update happen? Every violation, each naming its policy and field.
- ``offer``: what may a namespace create (``namespace_offer``): the catalog as its policies see it,
  for ``kubectl trove catalog`` and the console.

``kubetrove.admission`` feeds them what it read from the API server and turns the decision into an
admission response; docs/policy.md explains the model.
"""
