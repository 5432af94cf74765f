"""The workspace: comms.toml and the environment, the folders of a campaigns repository, TOML files with
their error lines, and new workspaces from the sample.

May import: pipeline.types, pipeline.errors. Everything else imports it.
"""
