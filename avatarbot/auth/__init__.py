"""Users, password hashing, JWT tokens and login rate limiting."""
