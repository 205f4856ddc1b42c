"""Web pages: the hosted opt-in form and the preference center, as safe HTML without JavaScript."""
