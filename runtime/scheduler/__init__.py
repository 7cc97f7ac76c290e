"""Bots that speak first: scheduled messages, follow-ups after inactivity, triggers, and the
Studio's scheduled reports (`runtime.scheduler.service.Scheduler`).

The project's tables are the truth (`storage.schedules`): a schedule is part of the version an
environment points at; each occurrence is a `schedule_run` row whose unique key lets exactly one
process send it. APScheduler (3.x, memory job store rebuilt from those tables) wakes the leader
at each fire time; a database lock (`runtime.cluster.leader`) makes one `serve` process the leader.
"""
