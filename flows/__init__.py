"""Prefect flows only: one render, batches (in this process or on a work pool), deployments and
schedules. The only package that imports Prefect; the work itself is `pipeline/`.

Prefect is configured by the process entry points (`cli`, `api.server`, the worker's environment)
through `flows.prefect_env`, before Prefect is imported; importing this package changes nothing.
"""
