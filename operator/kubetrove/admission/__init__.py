"""DatabasePolicy admission: the glue between the API server's admission requests and ``kubetrove.policy``.

``review`` reads what a decision needs (the policies, the namespace's labels, its resources' usage)
through ``kubetrove.k8s``, serialises decisions per namespace so parallel creates cannot overrun a
quota, and asks the pure ``kubetrove.policy.decide``. ``webhooks`` writes the CA into the webhook
configurations. ``handlers/admission.py`` wires both into kopf's validating and mutating webhooks.
"""
