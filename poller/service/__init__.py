"""The service around passes: the APScheduler daemon and systemd, the schedule and
leases several pollers share, ``status``, logging, and the metrics out (textfile and
HTTP endpoint). May import every room."""
