// Module ConcordNode: see DESIGN.md for its role.
