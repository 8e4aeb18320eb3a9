"""kubetrove.runtime: the operator process around the handlers.

Its configuration, read from the environment once (``config.OperatorConfig.from_env``, called by the
composition root ``handlers/main.py`` alone), heap trimming (``memory``) and the standby's liveness answer
(``health``). No kopf here: ``kubetrove.handlers`` is the only kopf glue.
"""
