// TODO: syntax conformance
