"""The timetable: schedule files, crontab expressions, APScheduler jobs, the communication plan.

May import: runs and everything below it.
"""
