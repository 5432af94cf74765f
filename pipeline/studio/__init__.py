"""The studio: a local web page where the team previews, checks and reads results, with live reload.

    access.py     who may connect: loopback only, or anywhere with COMMS_STUDIO_TOKEN; same-origin posts
    reload.py     watchfiles over the workspace -> server-sent events; the page re-renders itself
    campaigns.py  the campaign list and one campaign as a contact gets it (runs.preview's Composer)
    frames.py     the email made into what an <iframe srcdoc> shows: images off, dark mode, click badges
    results.py    runs, a run's report and click map, a campaign's series, A/B tests, the exec report
                  and its files (pipeline.reports' views and exec_files)
    app.py        the Starlette routes and pages;  serving.py  uvicorn, stopping open streams first

May import: timetable, feedback, reports, runs and everything below them (cli imports it).
"""
