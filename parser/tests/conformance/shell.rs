// TODO: shell conformance
