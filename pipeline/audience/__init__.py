"""Who receives a campaign: contacts and suppressions, CSV import and export, audience files compiled to
one SQL query.

May import: storage, workspace, types, errors.
"""
