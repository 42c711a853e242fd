"""The analysis engine: audio decode, log-mel front-end, musicnn, genre models, inference, results.

Imports torch (except sniff, errors and labels, which the API uses) and never Redis, Celery or Flask;
it takes plain arguments, never the service settings.
"""
