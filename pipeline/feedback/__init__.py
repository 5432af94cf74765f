"""What comes back after sending: the tracking server and its pages, events, preferences, provider
webhooks, DSN and ARF reading, bounces and mailboxes.

May import: runs and everything below it.
"""
