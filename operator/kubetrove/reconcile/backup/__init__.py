"""DatabaseBackup reconcile: taking backups through an agent, schedules, retention, restore validation.

handlers/backups.py is the kopf glue; everything here is plain async code over ``Deps`` (fakeable).
"""
