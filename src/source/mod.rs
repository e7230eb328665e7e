//! Sources: things to back up. File trees are walked; databases are dumped by their own tools
//! and streamed.

pub mod fs;
pub mod postgres;
pub mod tool;
