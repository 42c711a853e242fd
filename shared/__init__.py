"""What the API, the workers, the CLI and training share: settings, audio front-end, model."""
