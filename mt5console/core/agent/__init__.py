"""The console's side of the platform: HTTP client, durable outbox delivery, trade reporting."""
