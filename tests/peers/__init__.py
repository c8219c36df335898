"""Real peer servers (S3, ...) started on loopback for the tests that need them."""
