//! A layer with every kind of member Docker images carry, extracted for real.
