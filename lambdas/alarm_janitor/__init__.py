"""The alarm janitor: deletes per-job rule alarms of training jobs that have ended.

``plan`` is the pure core (alarm names + job statuses -> alarms to delete); ``app`` the scheduled handler
(``alarm_janitor.app.handler``). The asset ships this folder alone as the package ``alarm_janitor``.
"""
