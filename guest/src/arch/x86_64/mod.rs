//! x86_64 specifics.
