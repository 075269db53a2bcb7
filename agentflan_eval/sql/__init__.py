"""SQL engines for the Database task (in-memory SQLite, a MySQL/MariaDB server) and a throw-away local server."""
