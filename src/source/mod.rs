//! Sources: things to back up, each turned into a stream of entries. For now, file trees.

pub mod fs;
