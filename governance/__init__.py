"""Governance: the audit log, the AI marks (label detection, watermark reading, C2PA), `verify`, and
the authorization check shared by the CLI, the API, batches and flows.

Ethics and law are features here: nothing in this package has an off switch."""
