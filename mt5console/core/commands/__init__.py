"""The command bus and its sources: local strategy files and the Pusher channel."""
