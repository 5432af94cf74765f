"""One recipient's outgoing message: headers, MIME as bytes, DKIM, signed tokens, per-recipient URLs.

May import: assembly (for the rendered templates), workspace, types, errors. Never storage or delivery.
"""
