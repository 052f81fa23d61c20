"""Staff: the accounts of prefecture agents and admins, their roles, sessions and API tokens."""
