"""SMS providers behind one interface."""
