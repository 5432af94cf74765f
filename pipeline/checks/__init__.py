"""Checks: brand, accessibility, client compatibility, deliverability and content rules run on a
campaign exactly as a send builds it, each finding mapped to the copy, layout or partial line.

    runner.py         build the message as a send does; run the rule families; severities, waivers
    sources.py        a finding's text or attribute -> the file and line an author wrote it on
    styles.py         inlined CSS read back: colours, backgrounds, font sizes, hidden elements
    brand.py, accessibility.py, compatibility.py, deliverability.py, content.py: the rule families
    formats.py        findings as text, JSON, GitHub workflow annotations, JUnit XML

May import: message, assembly, workspace and errors (runs calls it at run start: see runs/start.py).
"""
