"""Admin API routes, one router module per area; admin_api includes every `router` here."""
