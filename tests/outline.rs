// outline tests: written with the stage graph
