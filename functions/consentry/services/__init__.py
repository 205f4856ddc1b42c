"""Services: orchestrate domain decisions and store/provider calls for the handlers."""
