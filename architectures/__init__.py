"""The architecture zoo: YAML files shipped with blockbuilder (the repository's architectures/ folder)."""
