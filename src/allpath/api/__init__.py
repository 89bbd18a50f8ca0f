"""HTTP interfaces of allpath."""
