//! Memory management: physical frames, the page-table abstraction, the Möbius
//! VMM and fault statistics.
pub mod paging;
