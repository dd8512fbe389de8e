"""The Textual console: a front end over the core's Runtime (see ``app.run_console``)."""
