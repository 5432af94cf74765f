"""Sign-off bound to content: the hash of what a campaign would send, approvals of that hash (database and
approvals.log), the gate's verdict, the audit, and the review pack an approver reads.

May import: runs, timetable.schedules and everything below them — except content.py and ledger.py, which
import only assembly, audience, storage and workspace, because pipeline.runs.control asks them at run start.
"""
