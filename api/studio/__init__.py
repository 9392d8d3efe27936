"""The studio: the browser interface editors use to order, follow, review and download videos.

Served by the API process under `/studio` (api.studio.app.install_studio). It calls the same
functions as the CLI and the REST API (request checks, the job runner, pipeline.review.decide), so
the AI label, watermark, C2PA, audit and review gates apply to every video it makes.
"""
