"""The local embedded runtime: template.yaml on moto, with real Lambda event shapes."""
