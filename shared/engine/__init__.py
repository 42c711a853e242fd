"""The analysis engine: audio decode, log-mel front-end, musicnn, genre models and their checkpoints,
inference, result shaping and the genre-classify command.

It imports torch and never Redis, Celery or Flask, and takes plain arguments rather than the service
settings (tests/test_layout.py checks the imports). sniff.py uses only the standard library: the API
imports it to refuse uploads that are not audio.
"""
