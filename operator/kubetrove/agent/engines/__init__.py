"""The engine bundles: ``engines/<engine>/`` holds everything the agent knows of one engine.

The only code in the agent with engine syntax or an engine's name. The shared, engine-free parts beside
them: ``base`` (the driver Protocol and its errors), ``config`` (how a driver reaches its engine), ``plans``
(backup/restore commands as data), ``bundle`` (the typed bundle) and ``registry`` (the one lookup).
"""
