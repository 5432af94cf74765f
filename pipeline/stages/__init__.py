"""The stages of assembly, one module each, in the order a campaign goes through them.

Campaign scope, once per run (driven by pipeline.assemble):
    copy       templates/copy/NAME.md -> front matter and Markdown
    scope      per-recipient Jinja swapped for tokens, and back (read this first)
    layout     campaign-scope Jinja over layouts and partials
    compile    MJML -> HTML (MRML), errors located in the layout file
    inline     CSS inlined with premailer
    text       the plain-text alternative
Recipient scope, once per recipient:
    personalize  the compiled subject, HTML and text rendered for one contact
"""
