"""One router per resource: videos, batches, avatars, the synchronous compatibility route, operations."""
