//! Scenario tests: whole evaluations against a [`crate::MemSnapshot`].
