"""The pure rules: which listings a pass reads (``plan``, ``windows``), GitHub payloads
into the dashboard's rows (``transform``), a job's OS (``runner_os``) and the name of
every cursor (``cursors``). No network, no database, no clock of their own: everything
comes in as an argument, so each rule is tested table-driven. May import ``config``."""
