"""Streamed backups and verified restores: storage targets, per-engine commands, the runner, restore.

Invariants every module here keeps:
- A backup is COMPLETE only when its manifest exists; the manifest is written last, after every artifact
  was stored whole. Anything without a manifest (a killed tool, a killed agent) is never used.
- Artifacts are streamed from the tool's stdout to the target; the agent never keeps a full local copy.
- A restore verifies every artifact's SHA-256 before the target is touched (staging dir, then a rename).
"""
