"""The web console: ``kubectl trove console`` serves pages on 127.0.0.1 acting AS THE USER.

It runs on the user's machine with the user's kubeconfig, as ``kubectl proxy`` does, so Kubernetes
RBAC (and admission) judge every read and write exactly as for ``kubectl``; it holds no rights of its
own. ``pages`` renders HTML (pure, everything escaped); ``app`` is the aiohttp server (login token,
session cookie, CSRF, one error middleware) calling ``kubetrove.cli.commands``.
"""
