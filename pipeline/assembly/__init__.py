"""Campaign scope, once per run: copy, Jinja over MJML, MJML to HTML, CSS inlining, the text part, link
tracking; and recipient scope compiled for per-recipient rendering.

May import: workspace, types, errors. Never storage, delivery or anything that sends.
"""
