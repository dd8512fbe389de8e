"""The command bus and its sources (local strategy files; Pusher and platform jobs come later)."""
