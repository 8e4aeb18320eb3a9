"""``kubectl trove``: the Trove experience from a shell, acting as the user (their kubeconfig, their RBAC).

Layout: ``main`` (arguments, the one place errors become a line and an exit code), ``commands`` (one
function per command, through ``kubetrove.k8s``), ``manifests`` and ``views`` (pure: build custom
resources, summarise them), ``output`` (table, JSON, YAML). The CLI never talks to an agent and never
reads anything the user could not read with kubectl: it is a client of the custom resources only.
"""
