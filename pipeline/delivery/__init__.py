"""Sending: transports, what an SMTP answer means, pacing, and the engine that claims, builds, sends and
records.

May import: message, assembly, audience, storage, workspace, types, errors. Transports import only types
and errors.
"""
