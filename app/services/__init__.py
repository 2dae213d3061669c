"""Business logic behind the actors. Never imports dramatiq: testable without a worker."""
