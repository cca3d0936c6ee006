// TODO: dockerignore conformance
