"""Ladder's live bench (`make e2e`): the VPS rung deployed for real on this machine.

See tools/e2e/README.md for what it runs, what it asserts and where it differs from a
real server.
"""
